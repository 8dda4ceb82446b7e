"""Storage service clients built from the `DocumentStorage` connection settings.

Locally the setting holds an Azurite connection string. In Azure it is identity-based
(`DocumentStorage__blobServiceUri` and friends, with the app's managed identity), so no account
key exists anywhere. Containers, tables and queues are created on first use in each process,
because the local run and the tests start from empty storage; in Azure infra/ creates them and
the calls are cheap no-ops.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable
from functools import cached_property
from typing import Any

from azure.core.credentials import TokenCredential
from azure.core.exceptions import ResourceExistsError
from azure.data.tables import TableClient, TableServiceClient
from azure.storage.blob import BlobServiceClient, ContainerClient
from azure.storage.queue import (
    BinaryBase64DecodePolicy,
    QueueClient,
    QueueServiceClient,
    TextBase64EncodePolicy,
)

from shared.config import IdentityConnection, MissingSetting, Settings, StorageConnection
from shared.storage.names import DOCUMENT_STORAGE_CONNECTION
from shared.telemetry import carrier_with_trace

BLOB_READ_BYTES = 8 * 1024 * 1024
_created: set[tuple[str, str, str]] = set()
_created_lock = threading.Lock()


def _identity_credential(identity: IdentityConnection) -> TokenCredential:
    from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

    if identity.credential == "managedidentity":
        return ManagedIdentityCredential(client_id=identity.client_id)
    return DefaultAzureCredential()


def _service_uri(connection: str, identity: IdentityConnection, service: str) -> str:
    uri = getattr(identity, f"{service}_service_uri")
    if not uri:
        raise MissingSetting(f"identity-based storage connection {connection} has no {connection}__{service}ServiceUri")
    return str(uri)


class StorageClients:
    """The blob, queue and table service clients of one storage connection."""

    def __init__(self, connection_string: str | None = None, identity: IdentityConnection | None = None,
                 name: str = DOCUMENT_STORAGE_CONNECTION) -> None:
        if not connection_string and identity is None:
            raise ValueError("a connection string or identity-based settings are required")
        self._connection_string = connection_string
        self._identity = identity or IdentityConnection.model_validate({})
        self._name = name

    @classmethod
    def from_connection(cls, connection: StorageConnection) -> StorageClients:
        secret = connection.connection_string
        return cls(secret.get_secret_value() if secret else None, connection.identity, connection.name)

    @classmethod
    def from_settings(cls, settings: Settings, connection: str = DOCUMENT_STORAGE_CONNECTION) -> StorageClients:
        return cls.from_connection(settings.storage_connection(connection))

    @property
    def account_key_identity(self) -> str:
        """Identifies the account, for the per-process cache of created resources."""
        return self._connection_string or self._identity.blob_service_uri or ""

    @cached_property
    def _credential(self) -> TokenCredential:
        return _identity_credential(self._identity)

    @cached_property
    def blob_service(self) -> BlobServiceClient:
        # Downloads in 8 MiB ranges, the first one included (the SDK's defaults: 32 MiB, then 4 MiB):
        # a streamed document holds at most one range in memory, and 105 MB read about twice as fast.
        if self._connection_string:
            return BlobServiceClient.from_connection_string(
                self._connection_string, max_single_get_size=BLOB_READ_BYTES, max_chunk_get_size=BLOB_READ_BYTES)
        return BlobServiceClient(_service_uri(self._name, self._identity, "blob"), credential=self._credential,
                                 max_single_get_size=BLOB_READ_BYTES, max_chunk_get_size=BLOB_READ_BYTES)

    @cached_property
    def table_service(self) -> TableServiceClient:
        if self._connection_string:
            return TableServiceClient.from_connection_string(self._connection_string)
        return TableServiceClient(_service_uri(self._name, self._identity, "table"), credential=self._credential)

    @cached_property
    def queue_service(self) -> QueueServiceClient:
        if self._connection_string:
            return QueueServiceClient.from_connection_string(self._connection_string)
        return QueueServiceClient(_service_uri(self._name, self._identity, "queue"), credential=self._credential)

    def _ensure_exists(self, kind: str, name: str, create: Callable[[], object]) -> None:
        """Create a container, table or queue once per process, before anyone in it uses the name.

        The lock is held while the service creates it: a second thread that went ahead on the mere
        mark would write to a table the service has not made yet (TableNotFound)."""
        key = (self.account_key_identity, kind, name)
        if key in _created:
            return
        with _created_lock:
            if key not in _created:
                create()
                _created.add(key)

    def container(self, name: str) -> ContainerClient:
        client = self.blob_service.get_container_client(name)
        self._ensure_exists("container", name, lambda: _create_if_absent(client.create_container))
        return client

    def table(self, name: str) -> TableClient:
        self._ensure_exists("table", name, lambda: self.table_service.create_table_if_not_exists(name))
        return self.table_service.get_table_client(name)

    def queue(self, name: str) -> QueueClient:
        # The Functions host reads and writes base64 messages (host.json messageEncoding), while the SDK
        # defaults to plain text. The policies must be given to each queue client: the service client
        # does not pass its own on to the queue clients it makes.
        client = self.queue_service.get_queue_client(
            name, message_encode_policy=TextBase64EncodePolicy(), message_decode_policy=BinaryBase64DecodePolicy()
        )
        self._ensure_exists("queue", name, lambda: _create_if_absent(client.create_queue))
        return client

    def send_json(self, queue_name: str, payload: dict[str, Any], delay_s: int = 0) -> None:
        """Enqueue one JSON message, visible after `delay_s` seconds, carrying the current trace context."""
        self.queue(queue_name).send_message(
            json.dumps(carrier_with_trace(payload), separators=(",", ":")),
            visibility_timeout=max(0, int(delay_s)) or None,
        )


def _create_if_absent(create: Callable[[], object]) -> None:
    with contextlib.suppress(ResourceExistsError):
        create()
