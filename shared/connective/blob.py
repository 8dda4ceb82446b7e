"""Streams between Azure Blob Storage and Connective, never holding a whole document in memory.

    added = client.add_document_to_package(package_id, metadata, *blob_document(inbox_blob))
    result = download_to_blob(client.download_document_from_package(package_id, document_id), archive_blob)

The blob SDK reads its first range (`max_single_get_size`, 32 MiB by default) on opening and then
`max_chunk_get_size` blocks; uploads buffer one block (`max_block_size`) per concurrent request. Both
are options of the `BlobClient`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import IO, cast

from azure.core import MatchConditions
from azure.storage.blob import BlobClient, ContentSettings

from shared.connective.streaming import Download, DownloadResult


def blob_document(blob: BlobClient) -> tuple[Callable[[], IO[bytes]], int]:
    """A document source for uploads: an opener giving a fresh stream of the blob (so retries can
    send it again) and its length."""
    properties = blob.get_blob_properties()

    def open_blob() -> IO[bytes]:
        # Pinned to the ETag read above: a retry sends the same bytes, or fails if the blob changed.
        return cast(IO[bytes], blob.download_blob(etag=properties.etag, match_condition=MatchConditions.IfNotModified))

    return open_blob, properties.size


def download_to_blob(download: Download, blob: BlobClient, *, overwrite: bool = True,
                     content_type: str | None = None, metadata: dict[str, str] | None = None) -> DownloadResult:
    """Write a download into a block blob chunk by chunk; the result carries the size and SHA-256."""
    with download:
        blob.upload_blob(download.iter_chunks(), overwrite=overwrite, metadata=metadata,
                         content_settings=ContentSettings(content_type=content_type or download.content_type))
    return download.result()
