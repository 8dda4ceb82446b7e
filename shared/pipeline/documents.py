"""An input's documents: the PDF check and hash of one blob version, and the document as creation reads it.

Documents are never held in memory nor copied to disk: the PDF check reads the ranges it needs
from the blob in a child process (see `pdfcheck`), while the document is hashed range by range.
"""

from __future__ import annotations

import contextvars
import hashlib
import re
from concurrent.futures import ThreadPoolExecutor

from azure.core import MatchConditions
from azure.storage.blob import BlobClient
from pydantic import BaseModel

from shared.config import Settings
from shared.pipeline import routing
from shared.pipeline.errors_report import Rejection
from shared.pipeline.pdfcheck import PdfFacts, PdfRejected, RangeReader, inspect_pdf
from shared.pipeline.spec import PackageRequest

# The hash pass reads the document in ranges of this size: fewer, larger GETs are much faster than the
# blob SDK's default 4 MiB chunks, and only one range is held at a time.
HASH_READ_BYTES = 8 * 1024 * 1024


class StoredDocument(BaseModel):
    """A validated document as creation will read it: the exact blob version, its size and hash."""

    container: str
    blob: str
    etag: str
    size: int
    sha256: str
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


def _sha256(read_range: RangeReader, size: int) -> str:
    """The hash of the whole document, read in HASH_READ_BYTES ranges (one GET each), never held whole."""
    digest = hashlib.sha256()
    for offset in range(0, size, HASH_READ_BYTES):
        digest.update(read_range(offset, min(HASH_READ_BYTES, size - offset)))
    return digest.hexdigest()


def check_document(settings: Settings, blob: BlobClient, *, etag: str, size: int,
                   markers: list[str]) -> tuple[str, PdfFacts]:
    """Validate one PDF blob version; returns (sha256, facts) or raises Rejection.

    The PDF check (a child process reading the few ranges pypdf needs) and the hash (one pass over
    every byte) run side by side. Both read the blob under its ETag: a blob replaced meanwhile raises
    ResourceModifiedError.
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
    read_range = _blob_ranges(blob, etag)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="intake-pdfcheck") as pool:
        checking = pool.submit(contextvars.copy_context().run, inspect_pdf, read_range, size, markers)
        sha256 = _sha256(read_range, size)
        try:
            facts = checking.result()
        except PdfRejected as rejected:
            raise Rejection(rejected.code, f"{where}: {rejected}") from None
    return sha256, facts


def stored(container: str, blob_name: str, etag: str, size: int, sha256: str, facts: PdfFacts,
            request: PackageRequest, index: int) -> StoredDocument:
    spec = request.documents[index]
    return StoredDocument(
        container=container, blob=blob_name, etag=etag, size=size, sha256=sha256,
        name=spec.name or _file_stem(blob_name), language=spec.language or "en",
        external_reference=spec.external_reference, pages=facts.pages, last_page_size=facts.last_page_size,
        signature_fields=facts.signature_fields, markers_found=facts.markers_found,
    )


def _file_stem(blob_name: str) -> str:
    return routing.printable_name(re.sub(r"\.pdf$", "", blob_name.rpartition("/")[2], flags=re.IGNORECASE))
