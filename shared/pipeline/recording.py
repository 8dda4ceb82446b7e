"""Recording an input's outcome: the Received row and its `package-requests` message, or the InputRejected
row with its error report, event and webhook. Repeating either for the same packageRef changes nothing."""

from __future__ import annotations

import logging
from typing import Any

from shared.logging import get_logger, log_event
from shared.pipeline.documents import StoredDocument
from shared.pipeline.errors_report import Rejection, write_report
from shared.pipeline.spec import PackageRequest
from shared.storage import names
from shared.storage.packages import PackageRecord, RecordTooLarge
from shared.storage.status import UNCREATED, PackageStatus
from shared.storage.store import Store
from shared.telemetry import current_traceparent, intake_rejections
from shared.webhooks.publish import EventType, publish_event

logger = get_logger(__name__)


def record_accepted(store: Store, *, ref: str, source: str, source_uri: str, request: PackageRequest,
                    documents: list[StoredDocument], signing_fields: list[list[dict[str, Any]]],
                    bulk: tuple[str, str] | None = None, request_hash: str | None = None) -> PackageRecord:
    """Insert the Received row (or find the existing one) and ask for creation.

    `bulk` is (job, row key) for a package of a bulk send (shared.bulk); `request_hash` identifies an HTTP
    request's body for idempotency (shared.api.create).
    """
    wire = request.to_json_dict()
    for document in wire["documents"]:
        document.pop("content", None)  # the bytes live in the staged blob, never in the row
    record = PackageRecord(
        ref=ref, source=source, source_uri=source_uri,
        spec={"request": wire, "documents": [d.model_dump(mode="json") for d in documents],
              "signingFields": signing_fields},
        request_hash=request_hash,
        reminder_policy=request.reminders.to_json_dict() if request.reminders else {},
        subscribers=list(request.subscribers),
        bulk_job=bulk[0] if bulk else None, bulk_row=bulk[1] if bulk else None,
        trace_parent=current_traceparent(),
        # Matched to Connective's actors by email at the first status read (status_sync).
        signers=[{"email": str(signer.email), "name": signer.name, "type": signer.type, "order": signer.order}
                 for signer in request.signers],
    )
    stored, created = store.packages.insert(record)
    if created:
        store.events.append(ref, "received", source=source, source_uri=source_uri, documents=len(documents))
        log_event(logger, "intake.accepted", source=source, documents=len(documents), signers=len(request.signers))
    if stored.status is PackageStatus.RECEIVED:
        store.clients.send_json(names.PACKAGE_REQUESTS_QUEUE, {"packageRef": ref})
    return stored


def record_rejected(store: Store, *, ref: str, source: str, container: str, blob_name: str, etag: str | None,
                    rejection: Rejection) -> PackageRecord:
    """Error report, InputRejected row and event. Repeating it for the same ref changes nothing."""
    existing = store.packages.get(ref)
    if existing is not None:
        return existing
    report = write_report(store, source_container=container, blob_name=blob_name, etag=etag, package_ref=ref,
                          rejection=rejection)
    record = PackageRecord(ref=ref, status=PackageStatus.INPUT_REJECTED, source=source,
                           source_uri=f"{container}/{blob_name}", final_reason=str(rejection)[:1000],
                           error_report=f"{names.ERRORS_CONTAINER}/{report}")
    stored, created = store.packages.insert(record)
    if created:
        _announce_rejection(store, stored, rejection)
    return stored


def may_refuse(record: PackageRecord) -> bool:
    """True while an accepted input can still be refused: its row is Received or Creating and no status read
    saw its package past Draft. A package that went out for signing is real, and its row follows Connective
    whatever a late refusal says (status ranks alone would let any row up to Finished become InputRejected)."""
    return record.status in UNCREATED and (record.connective_status or "Draft").lower() == "draft"


def record_rejection_of_row(store: Store, ref: str, rejection: Rejection) -> PackageRecord | None:
    """Refuse an input that was accepted at intake but that Connective (or a later check) refused.

    Only a row that `may_refuse` changes; any other is returned as it is, with no report written.
    """
    record = store.packages.get(ref)
    if record is None or not may_refuse(record):
        if record is not None:
            log_event(logger, "intake.refusal_ignored", logging.WARNING, package_ref=ref, code=rejection.code,
                      status=record.status.value)
        return record
    container, _, blob_name = record.source_uri.partition("/")
    input_etag = (record.spec.get("documents") or [{}])[0].get("etag") if record.source == "inbox" else None
    report = write_report(store, source_container=container or record.source, blob_name=blob_name or ref,
                          etag=input_etag, package_ref=ref, rejection=rejection)

    def change(current: PackageRecord) -> bool:
        if not may_refuse(current):
            return False
        current.status = PackageStatus.INPUT_REJECTED
        current.final_reason = str(rejection)[:1000]
        current.error_report = f"{names.ERRORS_CONTAINER}/{report}"
        current.creation_lease_until = None
        return True

    stored = store.packages.mutate(ref, change)
    if stored is not None and stored.error_report == f"{names.ERRORS_CONTAINER}/{report}":
        _announce_rejection(store, stored, rejection)
    return stored


def _announce_rejection(store: Store, record: PackageRecord, rejection: Rejection) -> None:
    store.events.append(record.ref, "input_rejected", code=rejection.code, message=rejection.message[:1000],
                        report=record.error_report)
    publish_event(store, EventType.INPUT_REJECTED, record.ref, {
        "packageRef": record.ref, "source": record.source_uri, "code": rejection.code,
        "message": rejection.message, "errorReport": record.error_report,
    })
    intake_rejections.add(1, {"reason": rejection.code})
    log_event(logger, "intake.rejected", logging.WARNING, code=rejection.code, reason=rejection.message[:300],
              report=record.error_report)


def already_handled(store: Store, ref: str) -> bool:
    """True when an earlier trigger recorded this input; a Received row gets its queue message again."""
    existing = store.packages.get(ref)
    if existing is None:
        return False
    if existing.status is PackageStatus.RECEIVED:
        store.clients.send_json(names.PACKAGE_REQUESTS_QUEUE, {"packageRef": ref})
    log_event(logger, "intake.duplicate_trigger", status=existing.status.value)
    return True


def unexpected(error: Exception) -> Rejection:
    """An error no check foresaw. Retrying would fail the same way and end in the poison queue without a
    word to the uploader, so the input is refused with a report; the exception's type is kept, its message
    (which may quote the input) is not."""
    log_event(logger, "intake.unexpected_error", logging.ERROR, error_type=type(error).__name__)
    return Rejection("intake_failed", f"the input could not be checked ({type(error).__name__}); "
                                      "it is kept as it is, and the error was logged")


def record_accepted_checked(store: Store, **accepted: Any) -> PackageRecord:
    try:
        return record_accepted(store, **accepted)
    except RecordTooLarge as error:
        raise Rejection("package_too_large", str(error)) from None
