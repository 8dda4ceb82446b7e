"""An uploaded input's identity: its packageRef, its blob version and the trace its uploader started.

Every input gets a packageRef derived from its container, name and ETag, so a repeated trigger for the
same upload finds its row and changes nothing, and a new version of the blob is a new input.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import BlobClient

from shared.telemetry import TRACEPARENT


def package_ref_for_blob(prefix: str, container: str, blob_name: str, etag: str) -> str:
    """A short id that is the same for every trigger of one upload (one ETag) and differs for a new one."""
    digest = hashlib.sha256(f"{container}\n{blob_name}\n{etag.strip(chr(34))}".encode()).hexdigest()
    return f"{prefix}-{digest[:20]}"


@dataclass(frozen=True)
class BlobInput:
    container: str
    name: str
    etag: str
    size: int
    metadata: dict[str, str]

    @property
    def uri(self) -> str:
        return f"{self.container}/{self.name}"


def describe_blob(blob: BlobClient) -> BlobInput | None:
    """The blob's identity and metadata, or None when it was deleted since the trigger fired."""
    try:
        properties = blob.get_blob_properties()
    except ResourceNotFoundError:
        return None
    return BlobInput(container=blob.container_name, name=blob.blob_name, etag=str(properties.etag),
                     size=int(properties.size or 0), metadata=dict(properties.metadata or {}))


def uploaded_trace(metadata: dict[str, str]) -> str | None:
    """The uploader's W3C trace context, when it put one in the blob's `traceparent` metadata."""
    return next((value for key, value in metadata.items() if key.lower() == TRACEPARENT), None)
