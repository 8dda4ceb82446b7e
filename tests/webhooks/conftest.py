from __future__ import annotations

import pytest

from shared.config import Settings
from shared.storage.clients import StorageClients
from shared.storage.store import Store

SIGNING_SECRET = "whsec-test-0123456789"


@pytest.fixture()
def store(storage_connection_string: str) -> Store:
    return Store(StorageClients(storage_connection_string))


@pytest.fixture()
def settings(storage_connection_string: str) -> Settings:
    return Settings({
        "DocumentStorage": storage_connection_string,
        "WEBHOOK_SIGNING_SECRET": SIGNING_SECRET,
        "WEBHOOK_ALLOW_LOOPBACK": "true",
        "WEBHOOK_MAX_ATTEMPTS": "3",
        "WEBHOOK_RETRY_BASE_S": "0",
    })


