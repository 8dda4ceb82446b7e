"""Output bindings (queue, blob, table) from the values the worker returned, written after the function
returns, as the real host does."""

from __future__ import annotations

import contextlib
import json
import re
import threading
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from azure.core.exceptions import ResourceExistsError

from devtools.host.functions import Binding
from devtools.host.storage import StorageAccounts, encode_message


class BindingExpressionError(ValueError):
    """A `{name}` in a binding path has no value in the trigger's metadata."""


_EXPRESSION = re.compile(r"\{([^{}]+)\}")


def resolve_expressions(template: str, metadata: Mapping[str, Any]) -> str:
    """Fill `{name}`-style binding expressions from trigger metadata (case-insensitive keys)."""
    by_lower = {str(k).lower(): v for k, v in metadata.items()}

    def value(match: re.Match[str]) -> str:
        key = match.group(1).strip()
        lowered = key.lower()
        if lowered in {"rand-guid", "sys.randguid"}:
            return str(uuid.uuid4())
        if lowered in {"datetime", "sys.utcnow"}:
            return datetime.now(UTC).strftime("%Y-%m-%dT%H-%M-%SZ")
        if lowered not in by_lower or by_lower[lowered] is None:
            raise BindingExpressionError(f"no value for binding expression {{{key}}} in {template!r}")
        return str(by_lower[lowered])

    return _EXPRESSION.sub(value, template)


def _as_bytes(value: Any) -> bytes:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if isinstance(value, str):
        return value.encode("utf-8")
    if hasattr(value, "read"):
        return bytes(value.read())
    return json.dumps(value).encode("utf-8")


def _as_entities(value: Any) -> list[dict[str, Any]]:
    parsed = json.loads(value) if isinstance(value, str | bytes) else value
    entities = parsed if isinstance(parsed, list) else [parsed]
    if not all(isinstance(entity, dict) for entity in entities):
        raise TypeError("a table output must be a JSON object or an array of objects")
    return entities


class OutputWriter:
    """Writes the values that a function set on its output bindings."""

    def __init__(self, storage: StorageAccounts, queue_encoding: str) -> None:
        self._storage = storage
        self._queue_encoding = queue_encoding
        self._created: set[tuple[str, str, str]] = set()
        self._lock = threading.Lock()

    def _ensure(self, kind: str, connection: str, name: str, create: Any) -> None:
        key = (kind, connection, name)
        with self._lock:
            if key in self._created:
                return
        with contextlib.suppress(ResourceExistsError):
            create()
        with self._lock:
            self._created.add(key)

    def write(self, binding: Binding, value: Any, metadata: Mapping[str, Any]) -> None:
        writers = {"queue": self._write_queue, "blob": self._write_blob, "table": self._write_table}
        writers[binding.type](binding, value, metadata)

    def _write_queue(self, binding: Binding, value: Any, metadata: Mapping[str, Any]) -> None:
        name = resolve_expressions(binding.get("queueName"), metadata).lower()
        client = self._storage.queue(binding.connection).get_queue_client(name)
        self._ensure("queue", binding.connection, name, client.create_queue)
        for message in value if isinstance(value, list) else [value]:
            # The worker serializes a QueueMessage (alone or in a list) as {"id": ..., "body": ...}.
            if isinstance(message, dict) and "body" in message:
                message = message["body"]
            data = message if isinstance(message, str | bytes) else json.dumps(message)
            client.send_message(encode_message(data, self._queue_encoding))

    def _write_blob(self, binding: Binding, value: Any, metadata: Mapping[str, Any]) -> None:
        container, _, blob_name = resolve_expressions(binding.get("path"), metadata).partition("/")
        container_client = self._storage.blob(binding.connection).get_container_client(container)
        self._ensure("container", binding.connection, container, container_client.create_container)
        container_client.upload_blob(blob_name, _as_bytes(value), overwrite=True)

    def _write_table(self, binding: Binding, value: Any, metadata: Mapping[str, Any]) -> None:
        name = resolve_expressions(binding.get("tableName"), metadata)
        client = self._storage.table(binding.connection).get_table_client(name)
        self._ensure("table", binding.connection, name, client.create_table)
        for entity in _as_entities(value):
            for key, prop in (("PartitionKey", "partitionKey"), ("RowKey", "rowKey")):
                if key not in entity and binding.get(prop):
                    entity[key] = resolve_expressions(binding.get(prop), metadata)
            # Insert only: the real binding fails with EntityAlreadyExists on an existing row.
            client.create_entity(entity)
