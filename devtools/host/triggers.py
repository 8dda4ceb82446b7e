"""The objects a function receives for each trigger kind, as the Python worker builds them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from azure.functions.blob import InputStream
from azure.functions.queue import QueueMessage
from azure.functions.timer import TimerRequest
from azure.storage.blob import BlobClient, BlobServiceClient, ContainerClient, StorageStreamDownloader

try:  # SDK-type bindings (package azurefunctions-extensions-bindings-blob)
    from azurefunctions.extensions.bindings import blob as sdk_blob
except ImportError:
    sdk_blob = None  # type: ignore[assignment]


def timer_request(past_due: bool, status: dict[str, Any] | None = None,
                  schedule: dict[str, Any] | None = None) -> TimerRequest:
    return TimerRequest(past_due=past_due, schedule_status=status or {}, schedule=schedule or {})


def queue_message(message: Any, body: bytes) -> QueueMessage:
    """A QueueMessage from an azure-storage-queue message and its decoded body."""
    return QueueMessage(id=message.id, body=body, dequeue_count=message.dequeue_count,
                        pop_receipt=message.pop_receipt, insertion_time=message.inserted_on,
                        expiration_time=message.expires_on, time_next_visible=message.next_visible_on)


def queue_message_for_admin(text: str) -> QueueMessage:
    now = datetime.now(UTC)
    return QueueMessage(id=str(uuid.uuid4()), body=text.encode("utf-8"), dequeue_count=1, pop_receipt="",
                        insertion_time=now, expiration_time=None, time_next_visible=now)


def _sdk_types() -> dict[Any, str]:
    types: dict[Any, str] = {BlobClient: "client", ContainerClient: "container", StorageStreamDownloader: "stream"}
    if sdk_blob is not None:
        types.update({sdk_blob.BlobClient: "client", sdk_blob.ContainerClient: "container",
                      sdk_blob.StorageStreamDownloader: "stream"})
    return types


def blob_trigger_value(annotation: Any, service: BlobServiceClient, container: str, blob_name: str) -> Any:
    """The blob as the trigger parameter's annotation asks for it.

    SDK types (`azurefunctions.extensions.bindings.blob.BlobClient`, ContainerClient,
    StorageStreamDownloader) get real azure-storage-blob objects, so the function can stream large
    blobs; `bytes` and `str` get the content; anything else gets an InputStream.
    """
    client = service.get_blob_client(container, blob_name)
    kind = _sdk_types().get(annotation)
    if kind == "client":
        return client
    if kind == "container":
        return service.get_container_client(container)
    if kind == "stream":
        return client.download_blob()
    downloader = client.download_blob()
    data = downloader.readall()
    if annotation is bytes:
        return data
    if annotation is str:
        return data.decode("utf-8")
    properties = downloader.properties
    return InputStream(data=data, name=f"{container}/{blob_name}", uri=client.url, length=len(data),
                       blob_properties={"ETag": properties.etag, "Length": len(data),
                                        "ContentType": properties.content_settings.content_type,
                                        "LastModified": str(properties.last_modified)},
                       metadata=dict(properties.metadata or {}))
