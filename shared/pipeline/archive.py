"""Archiving a Finished package into `signed-documents/{yyyy}/{mm}/{packageRef}/`.

What lands there (docs/STORAGE.md has the full layout and metadata keys):

    {nn}-{document}.pdf               each signed document, as Connective serves it
    {nn}-{document}.audit-proof.xml   each document's audit proof
    audit-proof.xml                   the package audit proof, exactly as Connective sends it
    summary.json                      package ids, signers with timestamps, every file with its sha256

Connective calls, chosen to fit the call budget (4 calls for a 1-document, 1-signer package from
drop to archive, +1 per extra signer, +3 per extra document):
- one document: Download Document (1 call); several: Download Package, the ZIP (1 call), spooled
  to a temporary file (a ZIP needs random access) and each member streamed into its blob;
- Package Audit Proof (1 call). The proof's shape (the swagger's `Content`) names no document, but
  each signature names its `locationId`, and the row knows each document's locations; so each
  document's proof file is cut out of the package proof instead of costing one Document Audit
  Proof call per document (`split_audit_proof`), whether the proof has an `upload` per document or
  one per upload session. The cut-out keeps the package proof's root attributes, the `upload`
  elements with that document's signatures (and only those) and the package's indexes; only the
  package file carries Connective's signature, which is why it is archived unchanged beside them.
  A proof with a part that cannot be attributed (an unknown location, an `upload` without
  signatures) falls back to Document Audit Proof for every document.
Files already archived by an earlier, interrupted run (same name, same package id) are not fetched
again, so a retry after a missing rate token spends only the calls that are still missing.

Blobs are written as staged blocks and committed in one step with their metadata, sha256 included,
so a blob exists only complete and a document is never held whole in memory.
"""

from __future__ import annotations

import base64
import contextlib
import contextvars
import copy
import dataclasses
import hashlib
import json
import re
import shutil
import tempfile
import time
import xml.etree.ElementTree as ElementTree
import zipfile
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import IO, Any

import defusedxml.ElementTree as SafeElementTree
from azure.storage.blob import BlobBlock, BlobClient, ContainerClient, ContentSettings

from shared.config import Settings
from shared.connective.client import ConnectiveClient
from shared.connective.errors import (
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    RetryLater,
)
from shared.logging import get_logger, log_event
from shared.pipeline.status_sync import apply_status
from shared.retrying import visibility_delay_s
from shared.storage import names
from shared.storage.packages import PackageRecord, utcnow
from shared.storage.status import PackageStatus
from shared.storage.store import Store
from shared.telemetry import archive_bytes, archive_duration
from shared.webhooks.publish import EventType, publish_event

_log = get_logger(__name__)

# Blocks of 8 MiB, two of them staged at once while the next one fills: half the requests of 4 MiB
# blocks, and one request's round trip overlaps the next one's upload. A sink holds at most three
# blocks in memory.
BLOCK_BYTES = 8 * 1024 * 1024
STAGING_IN_FLIGHT = 2
PACKAGE_PROOF_NAME = "audit-proof.xml"
SUMMARY_NAME = "summary.json"
DOCUMENT_PROOF_SUFFIX = ".audit-proof.xml"
XML_TYPE = "application/xml"
JSON_TYPE = "application/json"
_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9._ -]+")
_EXTENSIONS = {"application/pdf": ".pdf", "application/xml": ".xml"}


class FileKind(StrEnum):
    SIGNED_DOCUMENT = "signed-document"
    DOCUMENT_AUDIT_PROOF = "document-audit-proof"
    PACKAGE_AUDIT_PROOF = "package-audit-proof"
    SUMMARY = "summary"


class ArchiveOutcome(StrEnum):
    ARCHIVED = "archived"
    ALREADY_ARCHIVED = "already-archived"
    NOT_FINISHED = "not-finished"  # the row is not Finished: nothing to archive (logged, dropped)
    NO_ROW = "no-row"
    NOT_READY = "not-ready"  # Connective answered 409: try again later
    DEFERRED = "deferred"  # no rate token: try again later
    GAVE_UP = "gave-up"  # too many tries, or the package is gone at Connective


@dataclass
class ArchiveResult:
    outcome: ArchiveOutcome
    retry_after_s: float = 0.0
    files: list[dict[str, Any]] = field(default_factory=list)
    detail: str = ""


@dataclass(frozen=True)
class PlannedDocument:
    document_id: str
    name: str
    content_type: str
    blob_name: str  # relative to the package folder
    proof_blob_name: str
    zip_name: str  # the member name Connective gives the document in the package ZIP
    location_ids: frozenset[str] = frozenset()


# ---------------------------------------------------------------------------------------------------
# Blob writing


class BlobSink:
    """A write-only stream into one block blob: blocks are staged as they fill, the commit sets the metadata.

    Up to STAGING_IN_FLIGHT blocks are staged in the background while the next one fills; a failed
    stage is raised by a later write or by the commit. Uncommitted blocks of an interrupted earlier
    run (or of this one) are dropped by the commit, so a retry leaves exactly one copy.

    Written chunks are kept as they come and joined once per block (one copy of each byte; a chunk
    that is a whole block is staged as it is). With `hashed_by_writer`, the writer (a client download
    hashes what it reads) passes the sha256 to `commit` and the bytes are not hashed twice.
    """

    def __init__(self, blob: BlobClient, staging: Executor, *, hashed_by_writer: bool = False) -> None:
        self._blob = blob
        self._staging = staging  # owned by the caller (an `Archiver` run), which shuts it down
        self._chunks: list[bytes] = []
        self._buffered = 0
        self._block_ids: list[str] = []
        self._in_flight: deque[Future[Any]] = deque()
        self._sha256 = None if hashed_by_writer else hashlib.sha256()
        self.size = 0

    def write(self, data: bytes, /) -> int:
        chunk = data if isinstance(data, bytes) else bytes(data)  # a caller may reuse its buffer
        if self._sha256 is not None:
            self._sha256.update(chunk)
        self.size += len(chunk)
        self._chunks.append(chunk)
        self._buffered += len(chunk)
        while self._buffered >= BLOCK_BYTES:
            self._stage(self._take(BLOCK_BYTES))
        return len(chunk)

    def _take(self, count: int) -> bytes:
        """The first `count` buffered bytes as one block; the rest stays buffered."""
        joined = self._chunks[0] if len(self._chunks) == 1 else b"".join(self._chunks)
        self._chunks = [joined[count:]] if len(joined) > count else []
        self._buffered = len(joined) - count if len(joined) > count else 0
        return joined[:count] if len(joined) > count else joined

    def _stage(self, chunk: bytes) -> None:
        while len(self._in_flight) >= STAGING_IN_FLIGHT:
            self._in_flight.popleft().result()
        block_id = base64.b64encode(f"{len(self._block_ids):08d}".encode()).decode()
        # In the caller's context, so the staging call's span joins the package's trace.
        staged = self._staging.submit(contextvars.copy_context().run, self._blob.stage_block, block_id, chunk)
        self._in_flight.append(staged)
        self._block_ids.append(block_id)

    @property
    def sha256(self) -> str:
        if self._sha256 is None:
            raise RuntimeError("this sink's writer hashes the bytes: its sha256 goes to commit()")
        return self._sha256.hexdigest()

    def commit(self, content_type: str, metadata: dict[str, str], sha256: str | None = None) -> str:
        """Write the remaining bytes and make the blob visible. Returns its sha256 (`sha256`, when given)."""
        digest = sha256 if sha256 is not None else self.sha256
        if self._buffered or not self._block_ids:
            self._stage(self._take(self._buffered))
        while self._in_flight:
            self._in_flight.popleft().result()
        blocks = [BlobBlock(block_id) for block_id in self._block_ids]
        self._blob.commit_block_list(blocks, content_settings=ContentSettings(content_type=content_type),
                                     metadata={**metadata, "sha256": digest})
        return digest


def _file_entry(blob: BlobClient, folder: str, name: str, kind: FileKind, content_type: str, size: int,
                sha256: str, document_id: str | None = None) -> dict[str, Any]:
    entry = {"name": name, "blob": folder + name, "url": blob.url, "kind": kind.value, "contentType": content_type,
             "size": size, "sha256": sha256}
    if document_id:
        entry["documentId"] = document_id
    return entry


# ---------------------------------------------------------------------------------------------------
# Naming


def package_folder(record: PackageRecord) -> str:
    """`{yyyy}/{mm}/{packageRef}/`, from the row's creation time: a repeat months later hits the same names."""
    return f"{record.created_at:%Y}/{record.created_at:%m}/{record.ref}/"


def _safe_name(name: str, extension: str) -> str:
    stem = name[: -len(extension)] if extension and name.lower().endswith(extension) else name
    stem = _UNSAFE_NAME_CHARS.sub("_", stem).strip(" ._") or "document"
    return stem[:100]


def plan_documents(documents: list[dict[str, Any]]) -> list[PlannedDocument]:
    planned: list[PlannedDocument] = []
    zip_names: set[str] = set()
    for index, document in enumerate(documents, start=1):
        content_type = str(document.get("type") or "application/pdf")
        extension = _EXTENSIONS.get(content_type, ".bin")
        name = str(document.get("name") or document["document_id"])
        base = f"{index:02d}-{_safe_name(name, extension)}"
        planned.append(PlannedDocument(
            document_id=str(document["document_id"]), name=name, content_type=content_type,
            blob_name=base + extension, proof_blob_name=base + DOCUMENT_PROOF_SUFFIX,
            zip_name=_zip_member_name(name, extension, zip_names),
            location_ids=frozenset(str(i).lower() for i in document.get("location_ids") or ()),
        ))
    return planned


def _zip_member_name(name: str, extension: str, taken: set[str]) -> str:
    """The member name of a document in the package ZIP: its name plus extension, ` (n)` for repeats."""
    candidate, counter = name + extension, 1
    while candidate in taken:
        counter += 1
        candidate = f"{name} ({counter}){extension}"
    taken.add(candidate)
    return candidate


# ---------------------------------------------------------------------------------------------------
# The archive run


class _NotReady(Exception):
    pass


class Archiver:
    """One archive run of one package; a context manager owning the threads that stage its blocks."""

    def __init__(self, store: Store, client: ConnectiveClient, record: PackageRecord) -> None:
        assert record.connective_package_id
        self.store = store
        self.client = client
        self.record = record
        self.package_id: str = record.connective_package_id
        self.folder = package_folder(record)
        self.container: ContainerClient = store.clients.container(names.SIGNED_CONTAINER)
        self.files: list[dict[str, Any]] = []
        self._staging = ThreadPoolExecutor(max_workers=STAGING_IN_FLIGHT, thread_name_prefix="archive-stage")
        self._existing = {
            blob.name[len(self.folder):]: blob
            for blob in self.container.list_blobs(name_starts_with=self.folder, include=["metadata"])
            if (blob.metadata or {}).get("packageid") == self.package_id and (blob.metadata or {}).get("sha256")
        }

    def __enter__(self) -> Archiver:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._staging.shutdown(wait=True, cancel_futures=True)

    def _blob(self, name: str) -> BlobClient:
        return self.container.get_blob_client(self.folder + name)

    def _metadata(self, kind: FileKind, document_id: str | None = None) -> dict[str, str]:
        metadata = {"packageid": self.package_id, "packageref": self.record.ref, "kind": kind.value}
        if document_id:
            metadata["documentid"] = document_id
        if kind == FileKind.DOCUMENT_AUDIT_PROOF:
            metadata["derivedfrom"] = PACKAGE_PROOF_NAME
        return metadata

    def _reuse(self, name: str, kind: FileKind, document_id: str | None = None) -> bool:
        """Record an already archived file; True when there is one."""
        existing = self._existing.get(name)
        if existing is None:
            return False
        self.files.append(_file_entry(self._blob(name), self.folder, name, kind,
                                      existing.content_settings.content_type or "", existing.size,
                                      existing.metadata["sha256"], document_id))
        return True

    def _commit(self, sink: BlobSink, name: str, kind: FileKind, content_type: str,
                document_id: str | None = None, sha256: str | None = None) -> None:
        sha256 = sink.commit(content_type, self._metadata(kind, document_id), sha256)
        self.files.append(_file_entry(self._blob(name), self.folder, name, kind, content_type, sink.size, sha256,
                                      document_id))

    def _upload_small(self, name: str, kind: FileKind, content_type: str, data: bytes,
                      document_id: str | None = None) -> None:
        sha256 = hashlib.sha256(data).hexdigest()
        self._blob(name).upload_blob(data, overwrite=True, content_settings=ContentSettings(content_type=content_type),
                                     metadata={**self._metadata(kind, document_id), "sha256": sha256})
        self.files.append(_file_entry(self._blob(name), self.folder, name, kind, content_type, len(data), sha256,
                                      document_id))

    # -- signed documents

    def archive_documents(self, planned: list[PlannedDocument]) -> None:
        missing = [doc for doc in planned if not self._reuse(doc.blob_name, FileKind.SIGNED_DOCUMENT, doc.document_id)]
        if not missing:
            return
        if len(planned) > 1:
            missing = self._from_package_zip(missing)
        for document in missing:
            self._download_document(document)

    def _download_document(self, document: PlannedDocument) -> None:
        sink = BlobSink(self._blob(document.blob_name), self._staging, hashed_by_writer=True)
        result = self.client.download_document_from_package(self.package_id, document.document_id, sink)
        self._commit(sink, document.blob_name, FileKind.SIGNED_DOCUMENT, document.content_type, document.document_id,
                     sha256=result.sha256)

    def _from_package_zip(self, missing: list[PlannedDocument]) -> list[PlannedDocument]:
        """Stream the documents out of the package ZIP; returns those the ZIP did not hold."""
        with tempfile.TemporaryFile(prefix="package-", suffix=".zip") as spool:
            self.client.download_package(self.package_id, spool)
            spool.seek(0)
            with zipfile.ZipFile(spool) as bundle:
                members = [info for info in bundle.infolist() if not info.is_dir()]
                by_document = _match_members(missing, members)
                for document in missing:
                    member = by_document.get(document.document_id)
                    if member is None:
                        continue
                    sink = BlobSink(self._blob(document.blob_name), self._staging)
                    with bundle.open(member) as source:
                        shutil.copyfileobj(source, sink, BLOCK_BYTES)
                    self._commit(sink, document.blob_name, FileKind.SIGNED_DOCUMENT, document.content_type,
                                 document.document_id)
        unmatched = [document for document in missing if document.document_id not in by_document]
        if unmatched:
            log_event(_log, "archive.zip.unmatched", documents=[d.document_id for d in unmatched])
        return unmatched

    # -- audit proofs

    def archive_proofs(self, planned: list[PlannedDocument]) -> None:
        with tempfile.TemporaryFile(prefix="audit-proof-", suffix=".xml") as spool:
            if self._reuse(PACKAGE_PROOF_NAME, FileKind.PACKAGE_AUDIT_PROOF):
                self._blob(PACKAGE_PROOF_NAME).download_blob().readinto(spool)
            else:
                sink = BlobSink(self._blob(PACKAGE_PROOF_NAME), self._staging)
                self.client.package_audit_proof(self.package_id, _Tee(spool, sink))
                self._commit(sink, PACKAGE_PROOF_NAME, FileKind.PACKAGE_AUDIT_PROOF, XML_TYPE)
            spool.seek(0)
            extracts = split_audit_proof(spool, self._with_locations(planned))
        for document in planned:
            extract = extracts.get(document.document_id)
            if extract is not None:
                self._upload_small(document.proof_blob_name, FileKind.DOCUMENT_AUDIT_PROOF, XML_TYPE, extract,
                                   document.document_id)
            elif not self._reuse(document.proof_blob_name, FileKind.DOCUMENT_AUDIT_PROOF, document.document_id):
                self._download_document_proof(document)

    def _with_locations(self, planned: list[PlannedDocument]) -> list[PlannedDocument]:
        """The documents with their location ids, which tell the package proof's parts apart.

        Creation keeps them on the row. A row without them (a package found by a look-up, a row made
        before they were kept) costs one Get Signing Locations call, fewer than a proof per document.
        """
        lacking = [d for d in planned if not d.location_ids and d.proof_blob_name not in self._existing]
        if len(planned) < 2 or not lacking:
            return planned
        try:
            listed = {d.document_id.lower(): d for d in self.client.get_signing_locations(self.package_id).documents}
        except (ConflictError, NotFoundError, InvalidRequestError) as error:
            log_event(_log, "archive.locations_unavailable", status=error.status)
            return planned
        return [dataclasses.replace(d, location_ids=frozenset(
            location.id.lower() for location in listed[d.document_id.lower()].locations))
            if not d.location_ids and d.document_id.lower() in listed else d for d in planned]

    def _download_document_proof(self, document: PlannedDocument) -> None:
        sink = BlobSink(self._blob(document.proof_blob_name), self._staging)
        self.client.package_audit_proof_doc(self.package_id, document.document_id, sink)
        sha256 = sink.commit(XML_TYPE, {**self._metadata(FileKind.DOCUMENT_AUDIT_PROOF, document.document_id),
                                        "derivedfrom": "connective"})
        self.files.append(_file_entry(self._blob(document.proof_blob_name), self.folder, document.proof_blob_name,
                                      FileKind.DOCUMENT_AUDIT_PROOF, XML_TYPE, sink.size, sha256,
                                      document.document_id))

    # -- summary

    def write_summary(self, archived_at: datetime) -> None:
        record = self.record
        summary = {
            "packageRef": record.ref,
            "packageId": self.package_id,
            "status": PackageStatus.FINISHED.value,
            "source": record.source,
            "sourceUri": record.source_uri,
            "createdAt": record.created_at.isoformat(),
            "archivedAt": archived_at.isoformat(),
            "documents": [{"documentId": d.get("document_id"), "name": d.get("name"), "type": d.get("type")}
                          for d in record.documents],
            "signers": [{key: signer.get(key) for key in ("email", "type", "status", "completed_at", "completed_by",
                                                          "actor_id", "stakeholder_id")}
                        for signer in record.signers],
            "files": self.files,
        }
        data = json.dumps(summary, indent=2, default=str).encode()
        self._upload_small(SUMMARY_NAME, FileKind.SUMMARY, JSON_TYPE, data)


class _Tee:
    """Writes each chunk to two targets (the spool file that is parsed, and the blob)."""

    def __init__(self, *targets: Any) -> None:
        self._targets = targets

    def write(self, data: bytes, /) -> int:
        for target in self._targets:
            target.write(data)
        return len(data)


def _match_members(documents: list[PlannedDocument], members: list[zipfile.ZipInfo]) -> dict[str, zipfile.ZipInfo]:
    """Pair documents with ZIP members: by the expected member name, then the rest by position."""
    by_name = {member.filename.rsplit("/", 1)[-1]: member for member in members}
    matched: dict[str, zipfile.ZipInfo] = {}
    for document in documents:
        member = by_name.pop(document.zip_name, None)
        if member is not None:
            matched[document.document_id] = member
    left_documents = [d for d in documents if d.document_id not in matched]
    left_members = [m for m in members if m.filename.rsplit("/", 1)[-1] in by_name]
    if left_documents and len(left_documents) == len(left_members):
        matched.update({d.document_id: m for d, m in zip(left_documents, left_members, strict=True)})
    return matched


def split_audit_proof(source: IO[bytes], planned: list[PlannedDocument]) -> dict[str, bytes]:
    """Each document's part of a package audit proof, where the proof's own shape tells which part is whose.

    The shape is the swagger's `Content` definition, which names no document; what it does name is the
    `locationId` of each signature, and the archive knows each document's locations. One document:
    the whole proof is its proof. Several: each document gets the `upload` elements that hold its
    signatures, keeping only its own signatures (an `upload` may cover one document or a whole upload
    session). A part that cannot be attributed (a signature at a location we do not know, an
    `upload` without signatures) could be anyone's: then no document is cut out here, and the archive
    fetches every document's proof with Document Audit Proof instead. Index entries cannot be told
    apart either: each extract keeps the package's `indexes` whole.
    """
    tree = SafeElementTree.parse(source)
    all_uploads = [(uploads, upload) for uploads in _iter_local(tree.getroot(), "uploads")
                   for upload in uploads if _local(upload.tag) == "upload"]
    if len(planned) == 1:
        return {planned[0].document_id: _extract(all_uploads)} if all_uploads else {}
    owner_of = {location: d.document_id for d in planned for location in d.location_ids}
    parts: dict[str, list[tuple[ElementTree.Element, ElementTree.Element]]] = {}
    for uploads, upload in all_uploads:
        owners = {owner_of.get(_attribute(signature, "locationid").lower())
                  for signature in _iter_local(upload, "signature")}
        if not owners or None in owners:
            log_event(_log, "archive.proof_not_attributable", documents=len(planned))
            return {}
        for owner in owners:
            parts.setdefault(str(owner), []).append((uploads, _only_signatures_of(upload, owner, owner_of)))
    return {document_id: _extract(found) for document_id, found in parts.items()}


def _only_signatures_of(upload: ElementTree.Element, document_id: str | None,
                        owner_of: dict[str, str]) -> ElementTree.Element:
    """A copy of `upload` without the signatures of other documents."""
    kept = copy.deepcopy(upload)
    for container in list(_iter_local(kept, "signatures")):
        for entry in list(container):
            if owner_of.get(_attribute(entry, "locationid").lower()) != document_id:
                container.remove(entry)
    return kept


def _extract(parts: list[tuple[ElementTree.Element, ElementTree.Element]]) -> bytes:
    uploads, _ = parts[0]
    root = ElementTree.Element(uploads.tag, dict(uploads.attrib))
    for _, upload in parts:
        root.append(copy.deepcopy(upload))
    for indexes in (child for child in uploads if _local(child.tag) == "indexes"):
        root.append(copy.deepcopy(indexes))
    return ElementTree.tostring(root, encoding="utf-8", xml_declaration=True)


def _attribute(element: ElementTree.Element, name: str) -> str:
    """An attribute whatever its case and namespace (the element names are unconfirmed upstream)."""
    return next((value for key, value in element.attrib.items() if _local(key).lower() == name), "")


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _iter_local(root: ElementTree.Element, name: str) -> Iterator[ElementTree.Element]:
    return (element for element in root.iter() if _local(element.tag) == name)


# ---------------------------------------------------------------------------------------------------
# Entry points


def archive_package(store: Store, client: ConnectiveClient, settings: Settings, ref: str) -> ArchiveResult:
    """Archive the Finished package `ref` (idempotent). Connective errors other than 409 propagate."""
    record = store.packages.get(ref)
    if record is None:
        return ArchiveResult(ArchiveOutcome.NO_ROW)
    if record.status == PackageStatus.ARCHIVED:
        if settings.delete_after_archive:
            delete_at_connective(store, client, record)
        return ArchiveResult(ArchiveOutcome.ALREADY_ARCHIVED, files=record.archived_files)
    if record.status != PackageStatus.FINISHED or not record.connective_package_id:
        return ArchiveResult(ArchiveOutcome.NOT_FINISHED, detail=record.status.value)
    if not record.documents:
        # Rows finished before the document list was kept: one status read supplies it.
        applied = apply_status(store, ref, client.get_package_status(record.connective_package_id), source="archive")
        record = applied.record or record
    planned = plan_documents(record.documents)
    with Archiver(store, client, record) as archiver:
        archiver.archive_documents(planned)
        archiver.archive_proofs(planned)
        archived_at = utcnow()
        archiver.write_summary(archived_at)
    location = archiver.container.url.rstrip("/") + "/" + archiver.folder

    def mark(row: PackageRecord) -> bool:
        if row.status != PackageStatus.FINISHED:
            return False
        row.status = PackageStatus.ARCHIVED
        row.archive_location = location
        row.archived_files = archiver.files
        row.archived_at = archived_at
        row.last_error = None
        return True

    stored = store.packages.mutate(ref, mark)
    store.events.append(ref, "archived", location=location, files=len(archiver.files))
    publish_event(store, EventType.ARCHIVED, ref, {"archiveLocation": location, "files": archiver.files})
    log_event(_log, "archive.done", package_ref=ref, files=len(archiver.files))
    if stored is not None and settings.delete_after_archive:
        delete_at_connective(store, client, stored)
    return ArchiveResult(ArchiveOutcome.ARCHIVED, files=archiver.files)


def delete_at_connective(store: Store, client: ConnectiveClient, record: PackageRecord) -> None:
    """Delete an archived package at Connective, once (a 404 means it is gone already)."""
    if record.connective_deleted_at is not None or not record.connective_package_id:
        return
    with contextlib.suppress(NotFoundError):
        client.delete_package(record.connective_package_id)

    def mark(row: PackageRecord) -> bool:
        row.connective_deleted_at = utcnow()
        return True

    store.packages.mutate(record.ref, mark)
    store.events.append(record.ref, "deleted_at_connective", package_id=record.connective_package_id)
    log_event(_log, "archive.deleted_at_connective", package_ref=record.ref)


def handle_archive_request(store: Store, client: ConnectiveClient, settings: Settings,
                           message: dict[str, Any]) -> ArchiveResult:
    """One `archive-requests` message. Work that must wait goes back on the queue with a delay.

    409 (Connective has not finished the signed files yet) comes back after ARCHIVE_RETRY_DELAY_S,
    doubling per try, at most ARCHIVE_MAX_ATTEMPTS times (counted on the row); a missing rate
    token comes back when the limiter says one will be free. Returning normally acknowledges the
    message, so neither counts towards the poison queue.
    """
    ref = str(message.get("packageRef") or "")
    started = time.monotonic()
    try:
        result = archive_package(store, client, settings, ref)
    except RetryLater as error:
        delay_s = visibility_delay_s(error)
        store.clients.send_json(names.ARCHIVE_REQUESTS_QUEUE, {**message, "reason": "rate-limit"}, delay_s=delay_s)
        log_event(_log, "archive.deferred", package_ref=ref, delay_s=delay_s)
        return ArchiveResult(ArchiveOutcome.DEFERRED, retry_after_s=delay_s)
    except ConflictError as error:
        return _not_ready(store, settings, ref, message, str(error))
    except NotFoundError as error:
        _note_error(store, ref, f"package not found at Connective: {error}")
        return ArchiveResult(ArchiveOutcome.GAVE_UP, detail=str(error))
    if result.outcome is ArchiveOutcome.ARCHIVED:
        archive_duration.record(time.monotonic() - started)
        archive_bytes.add(sum(int(entry.get("size") or 0) for entry in result.files))
    if result.outcome in (ArchiveOutcome.NOT_FINISHED, ArchiveOutcome.NO_ROW):
        log_event(_log, "archive.dropped", package_ref=ref, outcome=result.outcome.value, detail=result.detail)
    return result


def _not_ready(store: Store, settings: Settings, ref: str, message: dict[str, Any], detail: str) -> ArchiveResult:
    attempts = 0

    def count(row: PackageRecord) -> bool:
        nonlocal attempts
        row.archive_attempts += 1
        row.last_error = f"archive not ready: {detail}"
        attempts = row.archive_attempts
        return True

    store.packages.mutate(ref, count)
    if attempts >= settings.archive_max_attempts:
        store.events.append(ref, "archive_gave_up", attempts=attempts, detail=detail)
        log_event(_log, "archive.gave_up", package_ref=ref, attempts=attempts)
        return ArchiveResult(ArchiveOutcome.GAVE_UP, detail=detail)
    delay_s = settings.archive_retry_delay_s * 2 ** (attempts - 1)
    store.clients.send_json(names.ARCHIVE_REQUESTS_QUEUE, {**message, "reason": "not-ready"}, delay_s=delay_s)
    store.events.append(ref, "archive_not_ready", attempts=attempts, retry_in_s=delay_s)
    log_event(_log, "archive.not_ready", package_ref=ref, attempts=attempts, delay_s=delay_s)
    return ArchiveResult(ArchiveOutcome.NOT_READY, retry_after_s=delay_s, detail=detail)


def _note_error(store: Store, ref: str, text: str) -> None:
    def note(row: PackageRecord) -> bool:
        row.last_error = text
        return True

    store.packages.mutate(ref, note)
    store.events.append(ref, "archive_failed", error=text)
    log_event(_log, "archive.failed", package_ref=ref, error=text)
