"""Fixtures for the local host's tests: the test app served by `python -m devtools.host` on Azurite."""

from __future__ import annotations

import base64
import contextlib
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.data.tables import TableServiceClient
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueServiceClient

from devtools.azurite import Azurite
from devtools.host.process import HostProcess

TEST_APP = "tests.host.apps.trigger_app"
FUNCTION_KEYS = ("test-function-key-1", "test-function-key-2")
MASTER_KEY = "test-master-key"
INBOX = "inbox"
TIMER_SCHEDULE = "*/2 * * * * *"


def host_env(connection_string: str, **extra: str) -> dict[str, str]:
    return {**os.environ, "AzureWebJobsStorage": connection_string, "DocumentStorage": connection_string,
            "HOST_FUNCTION_KEYS": ",".join(FUNCTION_KEYS), "HOST_MASTER_KEY": MASTER_KEY,
            "TEST_INBOX_CONTAINER": INBOX, "TEST_TIMER_SCHEDULE": TIMER_SCHEDULE, **extra}


def start_host(connection_string: str, tmp_path: Path, workers: int = 1, *extra_args: str,
               **settings: str) -> HostProcess:
    return HostProcess(app=TEST_APP, workers=workers, env=host_env(connection_string, **settings),
                       settings=tmp_path / "no-local.settings.json", extra_args=tuple(extra_args)).start()


def wait_for(condition: Callable[[], Any], timeout_s: float = 60.0, interval_s: float = 0.1) -> Any:
    """Poll until `condition` is truthy and return its value. The deadline only bounds a broken run: a
    loaded machine may take many times longer than a quiet one, and the test must still pass."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s} s")
        time.sleep(interval_s)


class Storage:
    """Test-side view of the account the host serves."""

    def __init__(self, connection_string: str) -> None:
        self.blobs = BlobServiceClient.from_connection_string(connection_string)
        self.queues = QueueServiceClient.from_connection_string(connection_string)
        self.tables = TableServiceClient.from_connection_string(connection_string)

    def upload(self, container: str, name: str, data: bytes) -> str:
        client = self.blobs.get_container_client(container)
        if not client.exists():
            client.create_container()
        return str(client.get_blob_client(name).upload_blob(data, overwrite=True)["etag"])

    def send(self, queue: str, text: str) -> None:
        client = self.queues.get_queue_client(queue)
        with contextlib.suppress(ResourceExistsError):
            client.create_queue()
        client.send_message(base64.b64encode(text.encode()).decode())

    def raw_messages(self, queue: str) -> list[str]:
        client = self.queues.get_queue_client(queue)
        try:
            return [m.content for m in client.peek_messages(max_messages=32)]
        except Exception:
            return []

    def messages_left(self, queue: str) -> int:
        """Messages still in `queue`, invisible ones (being run, or waiting for a retry) included."""
        try:
            return self.queues.get_queue_client(queue).get_queue_properties().approximate_message_count
        except ResourceNotFoundError:
            return 0

    def blob_work_left(self) -> int:
        """Messages on the host's internal blob-trigger work queues (one per host id)."""
        return sum(self.messages_left(queue.name)
                   for queue in self.queues.list_queues(name_starts_with="azure-webjobs-blobtrigger-"))

    def complete_receipts(self, function: str = "blob_inbox") -> list[str]:
        """Names of the blob receipts of `function` whose run has finished (no `Incomplete` mark).

        The host marks a receipt complete after the run and its outputs, and runs a blob version only
        while its receipt is incomplete: a version with a complete receipt can never run again.
        """
        container = self.blobs.get_container_client("azure-webjobs-hosts")
        try:
            return [receipt.name for receipt in container.list_blobs(name_starts_with="blobreceipts/",
                                                                     include=["metadata"])
                    if f"/Host.Functions.{function}/" in receipt.name
                    and not (receipt.metadata or {}).get("Incomplete")]
        except ResourceNotFoundError:
            return []

    def calls(self, function: str) -> list[dict[str, Any]]:
        table = self.tables.get_table_client("HostCalls")
        try:
            return list(table.query_entities(f"PartitionKey eq '{function}'"))
        except Exception:  # the table appears with the first call
            return []


@pytest.fixture(scope="session")
def host_storage(azurite: Azurite) -> Storage:
    return Storage(azurite.connection_string)


@pytest.fixture(scope="session")
def live_host(azurite: Azurite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostProcess]:
    """One host with one worker for the tests that do not restart it; request bodies up to 1 MB."""
    host = start_host(azurite.connection_string, tmp_path_factory.mktemp("host"), 1, "--max-body-mb", "1")
    try:
        yield host
    finally:
        host.stop()
