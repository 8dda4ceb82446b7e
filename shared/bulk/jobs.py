"""Starting a bulk send: `signing-bulk/{job}/job.json` landed (or POST /api/bulk-sends wrote it).

The job is validated once: job.json against its schema, each document like a batch document (the PDF
check, the hash), the recipients file's header (CSV) or opening bracket (JSON), and one sample row
through the whole package request, so a mistake in the job itself is reported once rather than on
every row. A bad job gets an error report in signing-errors/ and the state InputRejected.

A good job gets a new generation (a pass over the recipients file from its first row) and its first
`bulk-feed` message; `shared.bulk.feeder` does the rest. Every upload of job.json starts a new
generation: rows already sent are known by their key and skipped, so a re-upload, or an upload
after appending rows, sends only the new rows. The same upload seen twice (a repeated trigger)
changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceModifiedError
from azure.storage.blob import BlobClient, ContentSettings
from pydantic import ValidationError

from shared.bulk import recipients
from shared.bulk.spec import (
    JOB_FILE,
    BadRow,
    BulkJobSpec,
    column_name,
    is_valid_job_id,
    package_request,
)
from shared.config import Settings
from shared.logging import get_logger, log_event
from shared.pipeline import inputs, intake, layout, manifest, routing
from shared.pipeline.documents import check_document, stored
from shared.pipeline.errors_report import Rejection, write_report
from shared.storage import names
from shared.storage.bulk import BulkJob, JobState
from shared.storage.store import Store
from shared.webhooks.publish import EventType, publish_event

logger = get_logger(__name__)

READ_CHUNK_BYTES = 64 * 1024
_SAMPLE_ROW = {"email": "sample.recipient@example.com", "firstname": "Sample", "lastname": "Recipient"}


def feed_message(job: BulkJob) -> dict[str, Any]:
    """The `bulk-feed` message of the job's next step; only the step the job expects runs (see feeder)."""
    return {"job": job.job, "step": job.step, "generation": job.generation}


def send_step(store: Store, job: BulkJob, delay_s: float = 0) -> None:
    store.clients.send_json(names.BULK_FEED_QUEUE, feed_message(job), delay_s=int(delay_s + 0.999))


def blob_chunks(blob: BlobClient, etag: str, offset: int = 0) -> Iterator[bytes]:
    """The blob version `etag` from `offset`, in chunks; ResourceModifiedError once it has changed."""
    size = int(blob.get_blob_properties(etag=etag, match_condition=MatchConditions.IfNotModified).size or 0)
    if offset >= size:
        return
    downloader = blob.download_blob(offset=offset, etag=etag, match_condition=MatchConditions.IfNotModified)
    for chunk in downloader.chunks():
        # The SDK's chunks are up to 8 MiB (StorageClients); hand them on in smaller pieces so a record
        # never waits for more than it needs.
        for start in range(0, len(chunk), READ_CHUNK_BYTES):
            yield chunk[start:start + READ_CHUNK_BYTES]


def job_id_of(blob_name: str) -> str | None:
    """`{job}/job.json` → job; None for any other shape (nested folders, bad characters)."""
    parts = blob_name.split("/")
    if len(parts) != 2 or parts[1] != JOB_FILE or not is_valid_job_id(parts[0]):
        return None
    return parts[0]


def _validated_spec(raw: bytes) -> BulkJobSpec:
    parsed = manifest.parse_manifest(raw, JOB_FILE)
    try:
        return BulkJobSpec.model_validate(parsed)
    except ValidationError as error:
        details = routing.validation_details(error)
        shown = "; ".join(f"{d['path'] or '(root)'}: {d['message']}" for d in details[:5])
        raise Rejection("schema_invalid", f"{len(details)} problem(s): {shown}", details) from None


def _sample_request(job_id: str, spec: BulkJobSpec) -> Any:
    """The package request of a made-up row: catches mistakes of the job itself (not of a row) at once."""
    row = dict(_SAMPLE_ROW)
    for field in spec.template_fields:
        row.setdefault(column_name(field), "Sample")
    try:
        return package_request(job_id, spec, row)
    except BadRow as bad:
        raise Rejection("schema_invalid", f"the job cannot make a package: {bad.message}") from None


def _check_documents(store: Store, settings: Settings, folder: str, spec: BulkJobSpec,
                     request: Any) -> list[dict[str, Any]]:
    container = store.clients.container(names.BULK_CONTAINER)
    signer_count = sum(1 for signer in request.signers if signer.type == "Signer")
    markers = [layout.marker_for(routing.DEFAULT_MARKER_TEMPLATE, n) for n in range(1, signer_count + 1)]
    markers += [location.marker for signer in request.signers for location in signer.locations if location.marker]
    documents = []
    for index, document in enumerate(spec.documents):
        blob_name = manifest.batch_document_path(folder, document.path or "")
        blob = container.get_blob_client(blob_name)
        found = inputs.describe_blob(blob)
        if found is None:
            raise Rejection("document_missing", f"documents[{index}]: {document.path!r} is not in "
                                                f"{names.BULK_CONTAINER}/{folder}")
        facts = check_document(settings, blob, etag=found.etag, size=found.size, markers=markers)
        documents.append(stored(found.container, found.name, found.etag, found.size, facts,
                                       request, index))
    layout.check_explicit_markers(request, documents)
    return [document.model_dump(mode="json") for document in documents]


def recipients_start(store: Store, folder: str, spec: BulkJobSpec) -> tuple[str, str, list[str], int, int, int]:
    """(blob name, etag, CSV columns, offset of the first row, first line, size) of the recipients file."""
    blob_name = f"{folder}/{spec.recipients}"
    blob = store.clients.container(names.BULK_CONTAINER).get_blob_client(blob_name)
    found = inputs.describe_blob(blob)
    if found is None:
        raise Rejection("recipients_missing", f"{spec.recipients} is not in {names.BULK_CONTAINER}/{folder}")
    try:
        if blob_name.lower().endswith(".json"):
            start_offset = recipients.json_array_start(blob_chunks(blob, found.etag))
            return blob_name, found.etag.strip('"'), [], start_offset, 0, found.size
        columns, offset = recipients.read_csv_header(blob_chunks(blob, found.etag))
    except recipients.RecipientsUnreadable as unreadable:
        raise Rejection(unreadable.code, f"{spec.recipients}: {unreadable.message}") from None
    reduced = {column_name(column) for column in columns}
    if not reduced & {"email", "emailaddress", "mail"}:
        raise Rejection("email_column_missing", f"{spec.recipients} has no e-mail column (its header: "
                                                f"{', '.join(columns)[:300]})")
    missing = [field for field in spec.template_fields if column_name(field) not in reduced]
    if missing:
        raise Rejection("template_field_missing", f"the name template uses {{{missing[0]}}}, but "
                                                  f"{spec.recipients} has no such column")
    return blob_name, found.etag.strip('"'), columns, offset, 2, found.size


def start_from_blob(store: Store, settings: Settings, job_blob: BlobClient) -> BulkJob | None:
    described = inputs.describe_blob(job_blob)
    if described is None:
        log_event(logger, "bulk.blob_gone", blob=job_blob.blob_name)
        return None
    job_id = job_id_of(described.name)
    if job_id is None:
        rejection = Rejection("job_path_invalid", "a job.json must sit in a folder of its own directly in "
                                                  f"{names.BULK_CONTAINER}, named with letters, digits, - and _ "
                                                  "(at most 63)")
        report = write_report(store, source_container=described.container, blob_name=described.name,
                              etag=described.etag, package_ref=None, rejection=rejection)
        log_event(logger, "bulk.rejected", logging.WARNING, code=rejection.code, report=report)
        return None
    return start(store, settings, job_id, job_blob, described.etag, source="blob")


def start(store: Store, settings: Settings, job_id: str, job_blob: BlobClient, etag: str, *,
          source: str) -> BulkJob | None:
    """Validate the job.json version `etag` and start a new generation of the job (or find it started)."""
    existing = store.bulk.get(job_id)
    if existing is not None and existing.job_etag == etag.strip('"'):
        if not existing.state.is_final:
            send_step(store, existing)  # a repeated trigger: make sure the job has a step on its way
        log_event(logger, "bulk.duplicate_trigger", job=job_id, state=existing.state.value)
        return existing
    if existing is not None and existing.state in (JobState.CANCELLING, JobState.CANCELLED):
        log_event(logger, "bulk.cancelled_job_uploaded", logging.WARNING, job=job_id)
        return existing
    try:
        raw = job_blob.download_blob(etag=etag, match_condition=MatchConditions.IfNotModified).readall()
        spec = _validated_spec(raw)
        request = _sample_request(job_id, spec)
        intake.check_subscribers(settings, request)
        documents = _check_documents(store, settings, job_id, spec, request)
        recipients_blob, recipients_etag, columns, offset, first_line, size = recipients_start(store, job_id, spec)
    except Rejection as rejection:
        return _rejected(store, job_id, etag, rejection, existing, source)
    except ResourceModifiedError:
        log_event(logger, "bulk.blob_changed", job=job_id)  # the new version triggers anew
        return None
    fresh = BulkJob(job=job_id, source=source)

    def new_generation(job: BulkJob) -> bool:
        if job.job_etag == etag.strip('"') or job.state in (JobState.CANCELLING, JobState.CANCELLED):
            return False
        job.generation += 1
        job.step += 1
        job.state = JobState.SENDING
        job.job_etag = etag.strip('"')
        job.spec = spec.to_json_dict()
        job.documents = documents
        job.recipients_blob, job.recipients_etag, job.columns = recipients_blob, recipients_etag, columns
        job.recipients_size, job.rows_read = size, 0
        job.cursor, job.cursor_line, job.read_done = offset, first_line, False
        job.completed_at, job.reason, job.error_report, job.report_at = None, None, None, None
        return True

    if existing is None:
        fresh.generation = 0
        fresh.step = 0
        new_generation(fresh)
        stored, created = store.bulk.insert(fresh)
        if not created:
            stored = store.bulk.mutate(job_id, new_generation) or stored
    else:
        stored = store.bulk.mutate(job_id, new_generation) or existing
    log_event(logger, "bulk.started", job=job_id, generation=stored.generation, documents=len(documents))
    send_step(store, stored)
    return stored


def _rejected(store: Store, job_id: str, etag: str, rejection: Rejection, existing: BulkJob | None,
              source: str) -> BulkJob:
    """An error report; the job becomes InputRejected unless an earlier upload of it is already running."""
    report = write_report(store, source_container=names.BULK_CONTAINER, blob_name=f"{job_id}/{JOB_FILE}",
                          etag=etag, package_ref=None, rejection=rejection)
    log_event(logger, "bulk.rejected", logging.WARNING, job=job_id, code=rejection.code,
              reason=rejection.message[:300], report=report)
    if existing is not None and existing.state is not JobState.INPUT_REJECTED:
        return existing  # the earlier, valid upload goes on; the report says why this one was refused
    job = BulkJob(job=job_id, source=source, state=JobState.INPUT_REJECTED, job_etag=etag.strip('"'),
                  reason=str(rejection)[:1000], error_report=f"{names.ERRORS_CONTAINER}/{report}",
                  completed_at=datetime.now(UTC))
    if existing is None:
        job, _ = store.bulk.insert(job)
    else:
        def change(current: BulkJob) -> bool:
            current.job_etag, current.reason, current.error_report = job.job_etag, job.reason, job.error_report
            current.state, current.completed_at = JobState.INPUT_REJECTED, job.completed_at
            return True
        job = store.bulk.mutate(job_id, change) or job
    announce_rejection(store, job, rejection.code, rejection.message)
    return job


def announce_rejection(store: Store, job: BulkJob, code: str, message: str) -> None:
    from shared.bulk.report import write_files  # the report needs the job's rows; imported late for cycles

    write_files(store, job)
    publish_event(store, EventType.INPUT_REJECTED, job.job, {
        "packageRef": job.job, "source": f"{names.BULK_CONTAINER}/{job.job}/{JOB_FILE}", "code": code,
        "message": message, "errorReport": job.error_report,
    })


def upload_json(store: Store, blob_name: str, body: bytes) -> str:
    """Write a JSON blob in the bulk container; returns its ETag."""
    client = store.clients.container(names.BULK_CONTAINER).get_blob_client(blob_name)
    result = client.upload_blob(body, overwrite=True, content_settings=ContentSettings(content_type="application/json"))
    return str(result["etag"])
