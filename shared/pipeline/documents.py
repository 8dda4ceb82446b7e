"""An input's documents: the PDF check of one blob version, and the document as creation sends it.

Documents are never held in memory nor copied to disk: the PDF check reads the ranges it needs
from the blob in a child process (see `pdfcheck`), so intake reads a few MB of a 100 MB scan.
The document's hash is taken where its every byte is read anyway, while creation sends it to
Connective (`HashedStream`): it then states what Connective received, and intake makes no pass
over the whole document of its own.
"""

from __future__ import annotations

import hashlib
import re
from typing import IO

from azure.core import MatchConditions
from azure.storage.blob import BlobClient
from pydantic import BaseModel

from shared.config import Settings
from shared.pipeline import routing
from shared.pipeline.errors_report import Rejection
from shared.pipeline.pdfcheck import PdfFacts, PdfRejected, RangeReader, inspect_pdf
from shared.pipeline.spec import PackageRequest


class StoredDocument(BaseModel):
    """A validated document as creation will read it: the exact blob version and its size."""

    container: str
    blob: str
    etag: str
    size: int
    # Hex SHA-256 of the bytes Connective received, set by creation once it has sent them (None before,
    # and for a document that a resumed creation found already sent).
    sha256: str | None = None
    name: str
    language: str
    external_reference: str | None = None
    pages: int
    last_page_size: tuple[float, float]
    signature_fields: list[str] = []
    markers_found: list[str] = []



def max_document_bytes(settings: Settings) -> int:
    return settings.intake_max_document_mb * 1024 * 1024


def _blob_ranges(blob: BlobClient, etag: str) -> RangeReader:
    """Ranged reads of one blob version: each fails with ResourceModifiedError once the blob has changed."""
    def read_range(offset: int, length: int) -> bytes:
        return blob.download_blob(offset=offset, length=length, etag=etag,
                                  match_condition=MatchConditions.IfNotModified).readall()

    return read_range


def check_document(settings: Settings, blob: BlobClient, *, etag: str, size: int, markers: list[str]) -> PdfFacts:
    """Validate one PDF blob version; returns its facts or raises Rejection.

    The check reads the blob under its ETag: a blob replaced meanwhile raises ResourceModifiedError.
    """
    where = blob.blob_name
    if size == 0:
        raise Rejection("empty_document", f"{where} is empty")
    limit = max_document_bytes(settings)
    if size > limit:
        # Judged before any download and any Connective call: Connective refuses documents over 30 MB.
        raise Rejection("document_too_large",
                        f"{where} is {size / 1048576:.1f} MB; the limit is {limit / 1048576:g} MB",
                        [{"document": where, "sizeBytes": size, "limitBytes": limit}])
    try:
        return inspect_pdf(_blob_ranges(blob, etag), size, markers)
    except PdfRejected as rejected:
        raise Rejection(rejected.code, f"{where}: {rejected}") from None


def stored(container: str, blob_name: str, etag: str, size: int, facts: PdfFacts,
            request: PackageRequest, index: int) -> StoredDocument:
    spec = request.documents[index]
    return StoredDocument(
        container=container, blob=blob_name, etag=etag, size=size,
        name=spec.name or _file_stem(blob_name), language=spec.language or "en",
        external_reference=spec.external_reference, pages=facts.pages, last_page_size=facts.last_page_size,
        signature_fields=facts.signature_fields, markers_found=facts.markers_found,
    )


def _file_stem(blob_name: str) -> str:
    return routing.printable_name(re.sub(r"\.pdf$", "", blob_name.rpartition("/")[2], flags=re.IGNORECASE))


class HashedStream:
    """A document stream as creation sends it, hashed on the way (hashlib releases the GIL on large blocks)."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self._digest = hashlib.sha256()
        self.bytes_read = 0

    def read(self, size: int = -1) -> bytes:
        chunk = self._stream.read(size)
        self._digest.update(chunk)
        self.bytes_read += len(chunk)
        return chunk

    def sha256(self) -> str:
        return self._digest.hexdigest()
