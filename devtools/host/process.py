"""Run the host as a subprocess and wait until it is ready: for the local run, tests and benchmarks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import requests

from devtools.ports import free_port
from devtools.processes import stop_process

PROJECT_ROOT = Path(__file__).resolve().parents[2]
STATUS_PATH = "/admin/host/status"


class HostProcess:
    """`python -m devtools.host` in a child process, its output kept (and echoed when `echo` is set)."""

    def __init__(self, app: str = "function_app", port: int | None = None, workers: int = 1,
                 env: Mapping[str, str] | None = None, settings: Path | None = None, host_json: Path | None = None,
                 extra_args: tuple[str, ...] = (), echo: bool = False) -> None:
        self.app = app
        self.port = port or free_port()
        self.workers = workers
        self.env = dict(os.environ if env is None else env)
        self.settings = settings
        self.host_json = host_json
        self.extra_args = extra_args
        self.echo = echo
        self.process: subprocess.Popen[str] | None = None
        self.lines: list[str] = []
        self._reader: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        args = [sys.executable, "-m", "devtools.host", "--app", self.app, "--port", str(self.port),
                "--workers", str(self.workers)]
        if self.settings is not None:
            args += ["--settings", str(self.settings)]
        if self.host_json is not None:
            args += ["--host-json", str(self.host_json)]
        return [*args, *self.extra_args]

    def start(self, timeout_s: float = 60.0) -> HostProcess:
        self.lines = []
        self.process = subprocess.Popen(
            self.command(), cwd=PROJECT_ROOT, env={**self.env, "PYTHONUNBUFFERED": "1"},
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.wait_ready(timeout_s)
        return self

    def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))
            if self.echo:
                print(line, end="", flush=True)

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError("the host exited during start:\n" + "\n".join(self.lines[-40:]))
            try:
                if self.status().get("state") == "Running":
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise TimeoutError("the host did not become ready:\n" + "\n".join(self.lines[-40:]))

    def status(self) -> dict[str, Any]:
        response = requests.get(self.url + STATUS_PATH, timeout=5)
        response.raise_for_status()
        return response.json()

    def worker_pids(self) -> list[int]:
        return [w["pid"] for w in self.status()["workers"] if w["alive"]]

    def events(self, name: str) -> list[dict[str, Any]]:
        """The host's structured log lines with event `name`."""
        found = []
        for line in list(self.lines):
            if line.startswith("{") and f'"{name}"' in line:
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                if entry.get("event") == name:
                    found.append(entry)
        return found

    def stop(self, timeout_s: float = 30.0) -> None:
        if self.process is None:
            return
        stop_process(self.process, timeout_s)
        if self._reader is not None:
            self._reader.join(5)
        self.process = None

    def __enter__(self) -> HostProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
