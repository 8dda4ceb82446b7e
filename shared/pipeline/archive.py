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

The run itself (what is fetched and written, and the threads that stage its blocks) is an `Archiver`
(shared.pipeline.archiver); the proof's cut-out is shared.pipeline.audit_proof; blob writing is
shared.storage.blob_sink.BlobSink. This module is the step: which rows are archived, and what
happens when Connective is not ready or the rate token is missing.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from shared.config import Settings
from shared.connective.client import ConnectiveClient
from shared.connective.errors import ConflictError, NotFoundError, RetryLater
from shared.logging import get_logger, log_event
from shared.pipeline.archive_plan import plan_documents
from shared.pipeline.archiver import Archiver
from shared.pipeline.status_sync import apply_status
from shared.retrying import queue_delay_s
from shared.storage import names
from shared.storage.packages import PackageRecord, utcnow
from shared.storage.status import PackageStatus
from shared.storage.store import Store
from shared.telemetry import archive_bytes, archive_duration
from shared.webhooks.publish import EventType, publish_event

_log = get_logger(__name__)


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
        delay_s = queue_delay_s(error, settings)
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
