"""`make run`: Azurite, the Connective sandbox and the local Functions host, until Ctrl-C.

Real endpoints set in the environment or local.settings.json (a storage connection string, a
Connective URL and credentials) are used instead of Azurite and the sandbox; see docs/LOCAL_HOST.md.
"""

from __future__ import annotations

import argparse
import importlib.util
import signal
import subprocess
import sys
import threading
from pathlib import Path

from devtools.azurite import AZURITE_BIN, PROJECT_ROOT
from devtools.world import LocalWorld

AZURITE_DATA = PROJECT_ROOT / ".local" / "azurite"


def install_missing() -> None:
    """What `make setup` installs, for a run started without make."""
    if importlib.util.find_spec("croniter") is None:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-r", str(PROJECT_ROOT / "requirements-dev.txt")],
                       check=True)
    if not AZURITE_BIN.exists():
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"], cwd=PROJECT_ROOT, check=True)


def _guide(world: LocalWorld) -> str:
    try:
        from shared.storage import names
        inbox, batches, signed, errors = (names.INBOX_CONTAINER, names.BATCHES_CONTAINER, names.SIGNED_CONTAINER,
                                          names.ERRORS_CONTAINER)
    except ImportError:
        inbox, batches, signed, errors = "signing-inbox", "signing-batches", "signed-documents", "signing-errors"
    assert world.host is not None
    routes = world.host.status().get("routes", {})
    key = world.function_key
    # Azurite's development key is public; a real account's connection string is not printed.
    connection = world.storage_connection_string if world.azurite else "<DocumentStorage connection string>"
    lines = [
        "",
        "=" * 78,
        "The local world is running. Ctrl-C stops everything.",
        "",
        f"Storage   {'Azurite, data in ' + str(AZURITE_DATA) if world.azurite else 'the configured account'}",
        f"          connection string: {world.storage_connection_string if world.azurite else '(from settings)'}",
        f"Connective {world.sandbox_url}" + ("  (sandbox, auto-signing)" if world.sandbox else "  (real)"),
        f"Host      {world.host_url}   function key: {key}",
        "",
        "Drop documents:",
        f"  a PDF into container `{inbox}` (optional folder = routing profile), e.g.",
        f"    .venv/bin/python -c \"from azure.storage.blob import BlobClient as B; "
        f"B.from_connection_string('{connection}', '{inbox}', 'contract.pdf')"
        f".upload_blob(open('contract.pdf','rb'))\"",
        f"  a batch as `{batches}/<batch>/manifest.json` plus the documents it names",
        f"  signed results appear in `{signed}/`, rejected input reports in `{errors}/`",
        "",
        "Call the HTTP API (key as header or ?code=):",
    ]
    lines += [f"  curl -H 'x-functions-key: {key}' {world.host_url}{route}" for route in routes.values()]
    if not routes:
        lines.append(f"  curl -H 'x-functions-key: {key}' {world.host_url}/api/<route>")
    lines.append("=" * 78)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.run", description=__doc__)
    parser.add_argument("--workers", type=int, default=1, help="host worker processes")
    parser.add_argument("--port", type=int, default=7071, help="host HTTP port")
    parser.add_argument("--sandbox-port", type=int, default=7081)
    parser.add_argument("--settings", type=Path, default=PROJECT_ROOT / "local.settings.json")
    args = parser.parse_args(argv)
    install_missing()
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    world = LocalWorld(workers=args.workers, host_port=args.port, sandbox_port=args.sandbox_port,
                       settings_file=args.settings, azurite_location=AZURITE_DATA, echo=True)
    try:
        world.start()
        print(_guide(world), flush=True)
        while not stopping.wait(0.5):
            if world.host is not None and world.host.process is not None and world.host.process.poll() is not None:
                print("The host stopped; shutting down.", file=sys.stderr)
                return 1
    except KeyboardInterrupt:
        pass
    finally:
        print("\nStopping the host, the sandbox and Azurite...", flush=True)
        world.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
