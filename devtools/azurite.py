"""Start and stop Azurite (blob, queue and table) on loopback.

Used by `make run`, the demo, the tests and the benchmarks. Azurite comes from the project's
package.json (`npm install`), pinned to 3.35.0, the last release that runs on Node 20.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from devtools.ports import free_port, wait_for_port
from devtools.processes import stop_process

PROJECT_ROOT = Path(__file__).resolve().parent.parent
AZURITE_BIN = PROJECT_ROOT / "node_modules" / ".bin" / "azurite"
# Azurite's well-known development account; not a secret.
DEV_ACCOUNT = "devstoreaccount1"
DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def connection_string(blob_port: int, queue_port: int, table_port: int, host: str = "127.0.0.1",
                      scheme: str = "http") -> str:
    return (
        f"DefaultEndpointsProtocol={scheme};AccountName={DEV_ACCOUNT};AccountKey={DEV_KEY};"
        f"BlobEndpoint={scheme}://{host}:{blob_port}/{DEV_ACCOUNT};"
        f"QueueEndpoint={scheme}://{host}:{queue_port}/{DEV_ACCOUNT};"
        f"TableEndpoint={scheme}://{host}:{table_port}/{DEV_ACCOUNT};"
    )


@dataclass
class Azurite:
    """One Azurite process. In memory by default; `location` keeps data on disk across restarts.

    With `tls` (a certificate and its key, PEM files) it serves HTTPS; with `oauth` as well it also
    accepts bearer tokens (Azurite's `--oauth basic`: it checks a token's issuer, audience and
    lifetime, not its signature), for identity-based connections.
    """

    location: Path | None = None
    tls: tuple[Path, Path] | None = None
    oauth: bool = False
    blob_port: int = field(default_factory=free_port)
    queue_port: int = field(default_factory=free_port)
    table_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    _workdir: tempfile.TemporaryDirectory[str] | None = None

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    @property
    def connection_string(self) -> str:
        return connection_string(self.blob_port, self.queue_port, self.table_port, scheme=self.scheme)

    def service_url(self, service: str) -> str:
        """The account's endpoint of `service` (blob, queue or table), as identity-based settings name it."""
        port = {"blob": self.blob_port, "queue": self.queue_port, "table": self.table_port}[service]
        return f"{self.scheme}://127.0.0.1:{port}/{DEV_ACCOUNT}"

    def start(self, timeout_s: float = 20.0) -> Azurite:
        if not AZURITE_BIN.exists():
            raise RuntimeError(f"{AZURITE_BIN} is missing: run `npm install` (or `make setup`) first")
        if self._workdir is None:
            self._workdir = tempfile.TemporaryDirectory(prefix="azurite-")
        persistence = ["--location", str(self.location)] if self.location else ["--inMemoryPersistence"]
        args = [
            str(AZURITE_BIN), *persistence, "--silent", "--skipApiVersionCheck", "--disableTelemetry", "--loose",
            "--blobHost", "127.0.0.1", "--blobPort", str(self.blob_port),
            "--queueHost", "127.0.0.1", "--queuePort", str(self.queue_port),
            "--tableHost", "127.0.0.1", "--tablePort", str(self.table_port),
        ]
        if self.tls:
            args += ["--cert", str(self.tls[0]), "--key", str(self.tls[1])]
            if self.oauth:
                args += ["--oauth", "basic"]
        # Calling the node script directly (not npx, not a shell) makes the Popen pid the server itself,
        # so stop() leaves nothing behind.
        self.process = subprocess.Popen(
            args, cwd=self._workdir.name, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        for port in (self.blob_port, self.queue_port, self.table_port):
            wait_for_port(port, timeout_s=timeout_s)
        return self

    def stop(self) -> None:
        if self.process is None:
            return
        stop_process(self.process, 15)
        self.process = None

    def restart(self) -> None:
        """Stop and start on the same ports; with `location` set, the data survives."""
        self.stop()
        self.start()

    def close(self) -> None:
        self.stop()
        if self._workdir is not None:
            self._workdir.cleanup()
            self._workdir = None

    def __enter__(self) -> Azurite:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run Azurite on loopback until interrupted.")
    parser.add_argument("--blob-port", type=int, default=10000)
    parser.add_argument("--queue-port", type=int, default=10001)
    parser.add_argument("--table-port", type=int, default=10002)
    parser.add_argument("--location", type=Path, help="keep data in this folder (default: in memory)")
    args = parser.parse_args(argv)
    if args.location:
        args.location.mkdir(parents=True, exist_ok=True)
    azurite = Azurite(location=args.location, blob_port=args.blob_port,
                      queue_port=args.queue_port, table_port=args.table_port)
    azurite.start()
    print(f"Azurite is up: {azurite.connection_string}", flush=True)
    try:
        assert azurite.process is not None
        azurite.process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        azurite.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

