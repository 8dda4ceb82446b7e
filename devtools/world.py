"""The whole local world in one call: Azurite, the Connective sandbox and the Functions host.

Used by `make run`, the demo, the end-to-end tests and the benchmarks:

    with LocalWorld(workers=3, extra_settings={"CONNECTIVE_RATE_CALLS": "50"}) as world:
        requests.get(f"{world.host_url}/api/health", headers={"x-functions-key": world.function_key})

A real storage connection (`DocumentStorage` / `AzureWebJobsStorage` other than
`UseDevelopmentStorage=true`) or a real `CONNECTIVE_BASE_URL` (not loopback) in the environment or
local.settings.json is used as given, and then Azurite or the sandbox is not started.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from devtools.azurite import PROJECT_ROOT, Azurite
from devtools.host.config import load_local_settings
from devtools.host.keys import FUNCTION_KEYS_SETTING, MASTER_KEY_SETTING
from devtools.host.process import HostProcess
from devtools.ports import free_port, wait_for_port
from devtools.processes import stop_process

DEFAULT_AZURITE_PORTS = (10000, 10001, 10002)
DEFAULT_HOST_PORT = 7071
DEFAULT_SANDBOX_PORT = 7081
SANDBOX_USER = "demo"
DEVELOPMENT_STORAGE = "UseDevelopmentStorage=true"
STORAGE_SETTINGS = ("DocumentStorage", "AzureWebJobsStorage")
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _preferred_port(port: int | None, default: int) -> int:
    """The given port; else the default when it is free; else any free port."""
    if port:
        return port
    return default if _port_free(default) else free_port()


def _uses_real_storage(env: Mapping[str, str], name: str) -> bool:
    value = env.get(name, "")
    identity = any(key.startswith(f"{name}__") for key in env)
    return identity or (bool(value) and value.strip().rstrip(";").lower() != DEVELOPMENT_STORAGE.lower())


def _uses_real_connective(env: Mapping[str, str]) -> bool:
    url = env.get("CONNECTIVE_BASE_URL", "")
    return bool(url) and urlsplit(url).hostname not in LOOPBACK


def _apply_setting_defaults(env: dict[str, str]) -> None:
    """Give every app setting that has a default its value, as infra/ does in Azure.

    The host resolves `%SETTING%` binding expressions (a timer's schedule, say) from the
    environment alone, so a default known only to shared.config would leave them unresolved.
    """
    try:
        from shared.config import SETTINGS
    except ImportError:
        return
    for setting in SETTINGS:
        if setting.default is not None:
            env.setdefault(setting.name, setting.default)


@dataclass
class LocalWorld:
    """Starts what is missing, sets the settings that tie the parts together, and stops what it started."""

    workers: int = 1
    app: str = "function_app"
    host_port: int | None = None
    sandbox_port: int | None = None
    sandbox_args: list[str] = field(default_factory=lambda: ["--auto-sign", "--auto-sign-delay", "3"])
    extra_settings: dict[str, str] = field(default_factory=dict)
    settings_file: Path | None = PROJECT_ROOT / "local.settings.json"
    azurite_location: Path | None = None
    azurite_ports: tuple[int, int, int] | None = None
    echo: bool = False

    azurite: Azurite | None = field(default=None, init=False)
    sandbox: subprocess.Popen[bytes] | None = field(default=None, init=False)
    host: HostProcess | None = field(default=None, init=False)
    settings: dict[str, str] = field(default_factory=dict, init=False)
    _tempdir: Any = field(default=None, init=False)

    # --- what callers read ------------------------------------------------------------------------

    @property
    def storage_connection_string(self) -> str:
        return self.settings.get("DocumentStorage", "")

    @property
    def sandbox_url(self) -> str:
        """The Connective API v3 base URL the app calls (the sandbox's, unless a real one is set)."""
        return self.settings["CONNECTIVE_BASE_URL"]

    @property
    def sandbox_root_url(self) -> str:
        parts = urlsplit(self.sandbox_url)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def host_url(self) -> str:
        assert self.host is not None, "the world is not started"
        return self.host.url

    @property
    def function_key(self) -> str:
        return self.settings[FUNCTION_KEYS_SETTING].split(",")[0]

    @property
    def master_key(self) -> str:
        return self.settings[MASTER_KEY_SETTING]

    @property
    def sandbox_credentials(self) -> tuple[str, str]:
        return self.settings["CONNECTIVE_USERNAME"], self.settings["CONNECTIVE_PASSWORD"]

    # --- lifecycle --------------------------------------------------------------------------------

    def start(self, timeout_s: float = 90.0) -> LocalWorld:
        env = dict(os.environ)
        load_local_settings(self.settings_file, env)
        _apply_setting_defaults(env)
        try:
            self._start_storage(env)
            self._start_sandbox(env)
            host_port = _preferred_port(self.host_port, DEFAULT_HOST_PORT)
            env.setdefault(FUNCTION_KEYS_SETTING, secrets.token_urlsafe(24))
            env.setdefault(MASTER_KEY_SETTING, secrets.token_urlsafe(24))
            env.setdefault("CALLBACK_SECRETS", secrets.token_urlsafe(32))
            env.setdefault("WEBHOOK_SIGNING_SECRET", secrets.token_urlsafe(32))
            if urlsplit(env.get("PUBLIC_BASE_URL", "")).hostname in {*LOOPBACK, None}:
                env["PUBLIC_BASE_URL"] = f"http://127.0.0.1:{host_port}"
            if not _uses_real_connective(env):
                env["WEBHOOK_ALLOW_LOOPBACK"] = "true"
            env.update(self.extra_settings)
            self.settings = env
            self._create_app_storage()
            self.host = HostProcess(app=self.app, port=host_port, workers=self.workers, env=env,
                                    settings=self.settings_file or Path(os.devnull),  # devnull: no file
                                    echo=self.echo)
            self.host.start(timeout_s)
        except BaseException:
            self.stop()
            raise
        return self

    def _start_storage(self, env: dict[str, str]) -> None:
        if all(_uses_real_storage(env, name) for name in STORAGE_SETTINGS):
            return
        location = self.azurite_location
        if location is None:
            self._tempdir = tempfile.TemporaryDirectory(prefix="world-azurite-")
            location = Path(self._tempdir.name)
        location.mkdir(parents=True, exist_ok=True)
        wanted = self.azurite_ports or DEFAULT_AZURITE_PORTS
        ports = wanted if all(_port_free(p) for p in wanted) else (free_port(), free_port(), free_port())
        self.azurite = Azurite(location=location, blob_port=ports[0], queue_port=ports[1], table_port=ports[2])
        self.azurite.start()
        for name in STORAGE_SETTINGS:
            if not _uses_real_storage(env, name):
                env[name] = self.azurite.connection_string

    def _start_sandbox(self, env: dict[str, str]) -> None:
        if _uses_real_connective(env):
            return
        configured = urlsplit(env.get("CONNECTIVE_BASE_URL", "")).port
        port = _preferred_port(self.sandbox_port, configured or DEFAULT_SANDBOX_PORT)
        env.setdefault("CONNECTIVE_USERNAME", SANDBOX_USER)
        if not env.get("DEFAULT_INITIATOR"):
            env["DEFAULT_INITIATOR"] = "initiator@example.com"
        env.setdefault("CONNECTIVE_PASSWORD", secrets.token_urlsafe(16))
        env["CONNECTIVE_BASE_URL"] = f"http://127.0.0.1:{port}/webportalapi/v3"
        output = None if self.echo else subprocess.DEVNULL
        self.sandbox = subprocess.Popen(
            [sys.executable, "-m", "devtools.sandbox", "--host", "127.0.0.1", "--port", str(port),
             "--user", f"{env['CONNECTIVE_USERNAME']}:{env['CONNECTIVE_PASSWORD']}", *self.sandbox_args],
            cwd=PROJECT_ROOT, env={**env, "PYTHONUNBUFFERED": "1"}, stdout=output, stderr=output)
        wait_for_port(port, timeout_s=20)

    def _create_app_storage(self) -> None:
        """Create the app's containers, queues and tables, so documents can be dropped at once."""
        try:
            from shared.storage import names
        except ImportError:
            return
        from azure.core.exceptions import ResourceExistsError
        from azure.data.tables import TableServiceClient
        from azure.storage.blob import BlobServiceClient
        from azure.storage.queue import QueueServiceClient

        connection = self.settings.get("DocumentStorage", "")
        if not connection or "=" not in connection:
            return  # identity-based: created by infra in Azure
        blobs = BlobServiceClient.from_connection_string(connection)
        queues = QueueServiceClient.from_connection_string(connection)
        tables = TableServiceClient.from_connection_string(connection)
        creators = [*(lambda c=c: blobs.create_container(c) for c in names.CONTAINERS),
                    *(lambda q=q: queues.create_queue(q) for q in names.QUEUES),
                    *(lambda t=t: tables.create_table(t) for t in names.TABLES)]
        for create in creators:
            with contextlib.suppress(ResourceExistsError):
                create()

    def stop(self) -> None:
        if self.host is not None:
            self.host.stop()
        if self.sandbox is not None:
            stop_process(self.sandbox, 10)
            self.sandbox = None
        if self.azurite is not None:
            self.azurite.close()
            self.azurite = None
        if self._tempdir is not None:
            self._tempdir.cleanup()
            self._tempdir = None

    # --- faults for end-to-end and chaos runs -----------------------------------------------------

    def kill_worker(self, index: int = 0, sig: int = signal.SIGKILL, timeout_s: float = 30.0) -> int:
        """Kill one host worker; the host starts a new one. Returns the new worker's pid."""
        assert self.host is not None
        old = {w["index"]: w["pid"] for w in self.host.status()["workers"]}[index]
        os.kill(old, sig)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            current = {w["index"]: w for w in self.host.status()["workers"]}[index]
            if current["pid"] != old and current["alive"] and current["ready"]:
                return int(current["pid"])
            time.sleep(0.2)
        raise TimeoutError(f"worker {index} was not replaced within {timeout_s} s")

    def restart_azurite(self) -> None:
        """Stop and start Azurite on the same ports; its on-disk data survives."""
        assert self.azurite is not None, "this world uses real storage"
        self.azurite.restart()

    def restart_host(self, timeout_s: float = 90.0) -> None:
        assert self.host is not None
        self.host.stop()
        self.host.start(timeout_s)

    def __enter__(self) -> LocalWorld:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
