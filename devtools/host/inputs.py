"""What fired, shaped as the Functions host sends it to the worker: input data and trigger metadata.

The worker library and its extensions turn these into the function's arguments (`HttpRequest`,
`QueueMessage`, `TimerRequest`, `InputStream`, or the blob SDK types through `ModelBindingData`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import BlobServiceClient

from devtools.host import rpc
from devtools.host.functions import Binding

BLOB_SOURCE = "AzureStorageBlobs"  # the source the blob extension expects in ModelBindingData
MODEL_BINDING_DATA_VERSION = "1.0"


@dataclass
class Trigger:
    """The trigger's input data, its metadata (also the values of `{name}` binding expressions),
    and what the host logs about it."""

    kind: str
    data: rpc.TypedData
    metadata: Mapping[str, Any] = field(default_factory=dict)
    dequeue_count: int | None = None
    trace_parent: str = ""
    trace_state: str = ""


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def http_trigger(method: str, url: str, headers: Mapping[str, str], query: Mapping[str, str],
                 route_params: Mapping[str, str], body: bytes) -> Trigger:
    """An HTTP request as the host's RpcHttp message; the body as raw bytes (capability RawHttpBodyBytes)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    data = rpc.TypedData(http=rpc.RpcHttp(method=method, url=url, headers=dict(headers), query=dict(query),
                                          params=dict(route_params), body=rpc.TypedData(bytes=body)))
    return Trigger(kind="http", data=data, metadata={**query, **route_params},
                   trace_parent=lowered.get("traceparent", ""), trace_state=lowered.get("tracestate", ""))


def queue_trigger(message_id: str, body: bytes, dequeue_count: int, pop_receipt: str = "",
                  inserted_on: datetime | None = None, expires_on: datetime | None = None,
                  next_visible_on: datetime | None = None) -> Trigger:
    """A queue message: text as a string (binary content as bytes), with the queue trigger's metadata."""
    try:
        data = rpc.TypedData(string=body.decode("utf-8"))
    except UnicodeDecodeError:
        data = rpc.TypedData(bytes=body)
    text = body.decode("utf-8", errors="replace")
    system = {"Id": message_id, "DequeueCount": dequeue_count, "PopReceipt": pop_receipt, "QueueTrigger": text,
              "InsertionTime": _iso(inserted_on), "ExpirationTime": _iso(expires_on),
              "NextVisibleTime": _iso(next_visible_on)}
    metadata = {**json_properties(body), **{k: v for k, v in system.items() if v is not None}}
    return Trigger(kind="queue", data=data, metadata=metadata, dequeue_count=dequeue_count)


def timer_trigger(past_due: bool, status: Mapping[str, Any] | None = None) -> Trigger:
    """The timer's JSON: `Schedule`, `ScheduleStatus` (null when the schedule is not monitored), `IsPastDue`."""
    payload = {"Schedule": {"AdjustForDST": True}, "ScheduleStatus": dict(status) if status else None,
               "IsPastDue": past_due}
    return Trigger(kind="timer", data=rpc.TypedData(json=json.dumps(payload)))


def model_binding_data(connection: str, container: str, blob_name: str) -> rpc.TypedData:
    """What the host sends for a blob whose SDK client the extension builds from the connection settings."""
    content = json.dumps({"Connection": connection, "ContainerName": container, "BlobName": blob_name})
    return rpc.TypedData(model_binding_data=rpc.ModelBindingData(
        version=MODEL_BINDING_DATA_VERSION, source=BLOB_SOURCE, content_type="application/json",
        content=content.encode("utf-8")))


def blob_data(binding: Binding, service: BlobServiceClient, container: str, blob_name: str) -> rpc.TypedData:
    """A blob binding's input: ModelBindingData for SDK types, else the content (empty data when missing)."""
    if binding.deferred:
        return model_binding_data(binding.connection, container, blob_name)
    try:
        return rpc.TypedData(bytes=service.get_blob_client(container, blob_name).download_blob().readall())
    except ResourceNotFoundError:
        return rpc.TypedData()


def blob_trigger(binding: Binding, service: BlobServiceClient, container: str, blob_name: str,
                 properties: Any, path_values: Mapping[str, str], dequeue_count: int) -> Trigger:
    """A blob trigger with the metadata the blob extension gives: path, Uri, Properties, Metadata, path values."""
    metadata: dict[str, Any] = {
        **path_values,
        "BlobTrigger": f"{container}/{blob_name}",
        "Uri": service.get_blob_client(container, blob_name).url,
        "Properties": {"ContentLength": properties.size, "Length": properties.size, "ETag": properties.etag,
                       "ContentType": properties.content_settings.content_type,
                       "LastModified": _iso(properties.last_modified),
                       "BlobType": str(getattr(properties.blob_type, "value", properties.blob_type))},
        "Metadata": dict(properties.metadata or {}),
    }
    return Trigger(kind="blob", data=blob_data(binding, service, container, blob_name), metadata=metadata,
                   dequeue_count=dequeue_count)


def json_properties(body: bytes) -> dict[str, Any]:
    """Top-level properties of a JSON object body: binding expressions like `{packageRef}` use them."""
    try:
        parsed = json.loads(body)
    except ValueError:
        return {}
    return {k: v for k, v in parsed.items() if isinstance(v, str | int | float)} if isinstance(parsed, dict) else {}
