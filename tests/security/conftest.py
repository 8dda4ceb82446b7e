"""Fixtures of the security tests: a storage world for blob intake, and the HTTP API in-process."""

from __future__ import annotations

import pytest

from tests.api.conftest import ApiClient, env_for
from tests.pipeline.intake_support import World, base_env


@pytest.fixture()
def world(storage_connection_string: str) -> World:
    return World(base_env(storage_connection_string))


@pytest.fixture()
def api(monkeypatch: pytest.MonkeyPatch, storage_connection_string: str) -> ApiClient:
    return ApiClient(monkeypatch, env_for(storage_connection_string))
