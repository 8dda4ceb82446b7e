"""Storage clients for a binding's `connection`, read from app settings as the real host reads them.

A connection is either a connection string in the setting itself (locally, Azurite or a real
account) or identity-based settings `NAME__blobServiceUri` / `__queueServiceUri` /
`__tableServiceUri` (or `NAME__accountName`) with `NAME__credential` and `NAME__clientId`.
"""

from __future__ import annotations

import base64
import binascii
import os
import threading
from collections.abc import Mapping
from typing import Any

from azure.data.tables import TableServiceClient
from azure.storage.blob import BlobServiceClient
from azure.storage.blob import ExponentialRetry as BlobRetry
from azure.storage.queue import ExponentialRetry as QueueRetry
from azure.storage.queue import QueueServiceClient

from devtools.host.config import HostConfigError

_SERVICE_URI_KEYS = {"blob": "blobServiceUri", "queue": "queueServiceUri", "table": "tableServiceUri"}


def _identity_credential(parts: Mapping[str, str]) -> Any:
    from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

    if parts.get("credential", "").lower() == "managedidentity":
        return ManagedIdentityCredential(client_id=parts.get("clientId"))
    return DefaultAzureCredential(managed_identity_client_id=parts.get("clientId"))


class StorageAccounts:
    """Service clients per connection name, created once and shared by every thread of a process."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = os.environ if environ is None else environ
        self._clients: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()

    def _service_url(self, connection: str, service: str, parts: Mapping[str, str]) -> str:
        if _SERVICE_URI_KEYS[service] in parts:
            return parts[_SERVICE_URI_KEYS[service]]
        if "accountName" in parts:
            return f"https://{parts['accountName']}.{service}.core.windows.net"
        raise HostConfigError(f"connection {connection} has no {connection}__{_SERVICE_URI_KEYS[service]} setting")

    def _create(self, connection: str, service: str) -> Any:
        classes: dict[str, Any] = {"blob": BlobServiceClient, "queue": QueueServiceClient,
                                   "table": TableServiceClient}
        # The SDK's default first backoff is 15 s; a listener that polls again by itself does better
        # with short retries, so a storage restart stalls the host for seconds, not a minute.
        retries = {"blob": BlobRetry, "queue": QueueRetry}
        options: dict[str, Any] = {} if service not in retries else {
            "retry_policy": retries[service](initial_backoff=1, increment_base=2, retry_total=3)}
        value = self._environ.get(connection)
        if value:
            return classes[service].from_connection_string(value, **options)
        prefix = f"{connection}__"
        parts = {k[len(prefix):]: v for k, v in self._environ.items() if k.startswith(prefix) and v}
        if not parts:
            raise HostConfigError(f"storage connection {connection} is not set (a connection string, "
                                  f"or identity-based {connection}__* settings)")
        return classes[service](self._service_url(connection, service, parts), credential=_identity_credential(parts),
                                **options)

    def _get(self, connection: str, service: str) -> Any:
        with self._lock:
            key = (connection, service)
            if key not in self._clients:
                self._clients[key] = self._create(connection, service)
            return self._clients[key]

    def blob(self, connection: str) -> BlobServiceClient:
        return self._get(connection, "blob")

    def queue(self, connection: str) -> QueueServiceClient:
        return self._get(connection, "queue")

    def table(self, connection: str) -> TableServiceClient:
        return self._get(connection, "table")


# Messages are encoded by hand rather than with the SDK's Text/BinaryBase64 policies: a trigger
# reads the raw text so that one message that is not valid base64 goes to the poison queue on its
# own instead of failing the whole batch in the SDK's decode policy, and the poison copy keeps the
# exact text that was sent.
def encode_message(value: str | bytes, encoding: str) -> str:
    """The wire text of an output-binding message under host.json `messageEncoding`."""
    data = value.encode("utf-8") if isinstance(value, str) else bytes(value)
    if encoding == "base64":
        return base64.b64encode(data).decode("ascii")
    return data.decode("utf-8")


class UndecodableMessage(ValueError):
    """A trigger message whose text is not in the configured encoding."""


def decode_message(wire_text: str, encoding: str) -> bytes:
    """The body of a trigger message; base64 may carry binary content, as the real host allows."""
    if encoding != "base64":
        return wire_text.encode("utf-8")
    try:
        return base64.b64decode(wire_text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as error:
        raise UndecodableMessage("the message is not valid base64 (host.json messageEncoding is base64)") from error
