"""Fixtures shared by every test: real Azurite storage and the Connective sandbox, both on loopback.

Storage is never mocked. Each fixture starts its own process on OS-assigned ports and stops only
that process.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from devtools.azurite import AZURITE_BIN, PROJECT_ROOT, Azurite
from devtools.ports import free_port, wait_for_port
from devtools.processes import stop_process as stop_gracefully
from devtools.world import LocalWorld
from tests.webhooks.receiver import Receiver, running_receiver

SANDBOX_USER = "tester"
SANDBOX_PASSWORD = "s3cret-sandbox-pw"


def _require_azurite() -> None:
    if not AZURITE_BIN.exists():
        pytest.fail(f"{AZURITE_BIN} is missing: run `make setup`")


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    """One in-memory Azurite for the whole session. Tests that need empty storage use `fresh_azurite`."""
    _require_azurite()
    with Azurite() as instance:
        yield instance


@pytest.fixture()
def fresh_azurite() -> Iterator[Azurite]:
    """An Azurite of this test's own (about 1 s to start)."""
    _require_azurite()
    with Azurite() as instance:
        yield instance


@pytest.fixture(scope="session")
def storage_connection_string(azurite: Azurite) -> str:
    return azurite.connection_string


@dataclass
class SandboxHandle:
    """A running Connective sandbox."""

    port: int
    user: str
    password: str
    process: subprocess.Popen[bytes]

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.root_url}/webportalapi/v3"

    @property
    def auth(self) -> tuple[str, str]:
        return (self.user, self.password)

    def admin(self, method: str, path: str, **kwargs: object) -> requests.Response:
        """Call an admin endpoint under /_sandbox/ (no auth needed)."""
        response = requests.request(method, f"{self.root_url}/_sandbox/{path.lstrip('/')}", timeout=10, **kwargs)  # type: ignore[arg-type]
        response.raise_for_status()
        return response

    def reset(self) -> None:
        self.admin("POST", "reset")


def wait_until(predicate: Callable[[], Any], timeout_s: float = 60.0, interval_s: float = 0.02,
               what: str | None = None) -> Any:
    """Poll `predicate` until it returns something truthy, and return that; fail after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}" if what else "condition not met in time")
        time.sleep(interval_s)


def start_sandbox(*extra_args: str, user: str = SANDBOX_USER, password: str = SANDBOX_PASSWORD) -> SandboxHandle:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "devtools.sandbox", "--host", "127.0.0.1", "--port", str(port),
         "--user", f"{user}:{password}", *extra_args],
        cwd=PROJECT_ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        wait_for_port(port, timeout_s=60)
    except TimeoutError:
        process.kill()
        raise
    return SandboxHandle(port=port, user=user, password=password, process=process)


def stop_process(process: subprocess.Popen[bytes]) -> None:
    stop_gracefully(process, 10)


@pytest.fixture(scope="session")
def sandbox_session() -> Iterator[SandboxHandle]:
    handle = start_sandbox()
    try:
        yield handle
    finally:
        stop_process(handle.process)


@pytest.fixture()
def sandbox(sandbox_session: SandboxHandle) -> SandboxHandle:
    """The session's sandbox, reset to a clean state (no packages, default knobs, real clock)."""
    sandbox_session.reset()
    return sandbox_session


@pytest.fixture()
def receiver() -> Iterator[Receiver]:
    """A webhook subscriber on loopback that records what it receives."""
    with running_receiver() as instance:
        yield instance


def keyed(world: LocalWorld) -> dict[str, str]:
    """The headers that pass the local host's function-key check."""
    return {"x-functions-key": world.function_key}
