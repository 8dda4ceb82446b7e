"""The steps of a bulk send: one `bulk-feed` message each, `{"job", "step", "generation"}`.

A job is a chain of steps, each sending the next with a delay. The job row (`BulkSends`, RowKey `job`)
says which step it expects; a message for any other step is a duplicate (queue messages repeat) or
belongs to an older generation, and does nothing. A step's changes to the job and the move to the
next step are one ETag-guarded write, so a step that dies midway is simply run again, and everything
it does is idempotent (rows are claimed by key, packages inserted by packageRef).

- Sending: read recipient rows from the cursor and release them into `package-requests`, never more
  than the bulk share of the budget can create in one window (rows released and not yet created
  count against it). A good row becomes a package row (Received) and a message; a bad row becomes a
  skipped row with its reason. The next step comes at once while rows are waiting and the share has
  room, else a quarter of a window later.
- Tracking: every row is read; rewrite report.csv and summary.json every BULK_REPORT_INTERVAL_S until
  every package is final. Then the job is Completed (or Cancelled) and "bulk_send.completed" is
  published.
- Cancelling: no more rows are read. Packages not yet created are marked Revoked before they are; those
  out for signing are revoked at Connective (through the queue client, so the rate budget holds).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from azure.core.exceptions import ResourceModifiedError

from shared.bulk import jobs, recipients
from shared.bulk.pacing import creation_calls_per_package, share_calls
from shared.bulk.report import FINAL_ROW_STATUSES, OPEN_ROW_STATUSES, UNCREATED_ROW_STATUSES, Tally, write_files
from shared.bulk.spec import BadRow, BulkJobSpec, normalized_row, package_ref_for_row, package_request, row_key
from shared.config import Settings
from shared.connective.client import ConnectiveClient
from shared.connective.errors import ConnectiveError, RetryLater
from shared.logging import get_logger, log_event
from shared.pipeline import layout, recording, routing, status_sync
from shared.pipeline.documents import StoredDocument
from shared.pipeline.errors_report import Rejection, write_report
from shared.storage import names
from shared.storage.bulk import (
    SKIPPED,
    BulkJob,
    BulkRow,
    JobState,
    archive_path,
    good_row_key,
    skipped_row_key,
)
from shared.storage.packages import PackageRecord
from shared.storage.status import PackageStatus
from shared.storage.store import Store
from shared.webhooks.publish import EventType, publish_event

logger = get_logger(__name__)

CANCELLED_BEFORE_CREATION = "the bulk send was cancelled before this package was created"
HEAL_AT_MOST = 100  # rows whose package rows a tracking step re-reads when few are left open
RELEASE_THREADS = 8  # rows of one step released side by side


@dataclass
class _Outcome:
    delay_s: float
    change: Callable[[BulkJob], None] | None = None
    after: Callable[[BulkJob], None] | None = None  # runs once the step's write succeeded


def run_step(store: Store, settings: Settings, job_id: str, step: int,
             client: Callable[[], ConnectiveClient]) -> BulkJob | None:
    """Run step `step` of the job, if it is the one the job expects; returns the job after it."""
    job = store.bulk.get(job_id)
    if job is None or job.step != step or job.state.is_final:
        log_event(logger, "bulk.step_skipped", job=job_id, step=step,
                  expected=job.step if job else None, state=job.state.value if job else None)
        return job
    outcome = _feed(store, settings, job) if job.state is JobState.SENDING else _track(store, settings, job, client)
    applied = False

    def advance(current: BulkJob) -> bool:
        nonlocal applied
        applied = current.step == step
        if applied:
            current.step += 1
            current.step_resends = 0  # the chain moves: a later stall gets its full count of re-sends
            if outcome.change is not None:
                outcome.change(current)
        return applied

    stored = store.bulk.mutate(job_id, advance)
    if stored is None or not applied:
        log_event(logger, "bulk.step_superseded", job=job_id, step=step)
        return stored
    if outcome.after is not None:
        outcome.after(stored)
    if not stored.state.is_final:
        jobs.send_step(store, stored, outcome.delay_s)
    return stored


def _report_due(settings: Settings, job: BulkJob) -> bool:
    interval = timedelta(seconds=settings.bulk_report_interval_s)
    return job.report_at is None or datetime.now(UTC) - job.report_at >= interval


# ---------------------------------------------------------------------------------------------------
# Sending


def _feed(store: Store, settings: Settings, job: BulkJob) -> _Outcome:
    spec = BulkJobSpec.model_validate(job.spec)
    documents = [StoredDocument.model_validate(document) for document in job.documents]
    window_s = settings.connective_rate_window_s
    capacity = max(1, share_calls(settings) // creation_calls_per_package(len(documents)))
    in_flight = sum(1 for _ in store.bulk.rows(job.job, UNCREATED_ROW_STATUSES))
    allowance = capacity - in_flight
    report_now = _report_due(settings, job)
    if allowance <= 0:
        return _Outcome(max(1.0, window_s / 4), *_with_report(store, settings, report_now))
    step_rows = settings.bulk_step_rows
    max_rows = settings.bulk_max_rows
    blob = store.clients.container(names.BULK_CONTAINER).get_blob_client(job.recipients_blob)
    cursor, line, rows_read = job.cursor, job.cursor_line, job.rows_read
    released = examined = 0
    done = False
    try:
        chunks = jobs.blob_chunks(blob, job.recipients_etag, cursor)
        if job.recipients_blob.lower().endswith(".json"):
            reader = recipients.read_json_rows(chunks, cursor, line)
        else:
            reader = recipients.read_csv_rows(chunks, job.columns, cursor, line)
        with ThreadPoolExecutor(max_workers=RELEASE_THREADS, thread_name_prefix="bulk-release") as pool:
            while not done and released < allowance and examined < step_rows:
                # Rows in a batch are released side by side (their storage writes are independent: a key is
                # claimed by an insert, so two rows with one key still make one package); a batch never holds
                # more rows than could still be released, so the allowance holds.
                batch, broken, done = _take(reader, min(allowance - released, step_rows - examined))
                examined += len(batch)
                usable = []
                for index, raw in enumerate(batch):
                    if raw.error == "blank":
                        continue
                    if rows_read >= max_rows:
                        _skip(store, job, raw.line, f"line {raw.line}", "too_many_rows",
                              f"a bulk send has at most {max_rows} rows (BULK_MAX_ROWS); this and every later row "
                              f"were not read")
                        batch, done, broken = batch[:index], True, None
                        break
                    rows_read += 1
                    usable.append(raw)
                released += sum(pool.map(lambda raw: _release_row(store, job, spec, documents, raw), usable))
                if batch:
                    cursor, line = batch[-1].end, batch[-1].next_line
                if broken is not None:
                    _skip(store, job, broken.line, f"line {broken.line}", broken.code,
                          f"{broken.message}; the rest of the file was not read")
    except ResourceModifiedError:
        return _restart_with_new_recipients(store, job, spec)
    log_event(logger, "bulk.fed", job=job.job, released=released, examined=examined, in_flight=in_flight,
              capacity=capacity, done=done)

    def change(current: BulkJob) -> None:
        if current.generation != job.generation:
            return
        current.cursor, current.cursor_line, current.rows_read = cursor, line, rows_read
        if done:
            current.read_done = True
            if current.state is JobState.SENDING:
                current.state = JobState.TRACKING
        if report_now:
            current.report_at = datetime.now(UTC)

    def after(stored: BulkJob) -> None:
        if done and not _has_good_row(store, stored):
            _reject_for_no_good_row(store, stored)
        elif report_now:
            write_files(store, stored, settings)

    if done:
        delay = 0.0
    elif released >= allowance:
        delay = max(1.0, window_s / 4)
    else:
        delay = 0.0
    return _Outcome(delay, change, after)


def _take(reader: Iterator[recipients.RawRow],
          count: int) -> tuple[list[recipients.RawRow], recipients.RecipientsUnreadable | None, bool]:
    """Up to `count` rows; (rows, the error that ended the file early, whether the file is done)."""
    rows: list[recipients.RawRow] = []
    try:
        for raw in reader:
            rows.append(raw)
            if len(rows) >= count:
                return rows, None, False
    except recipients.RecipientsUnreadable as unreadable:
        return rows, unreadable, True
    return rows, None, True


def _with_report(store: Store, settings: Settings,
                 report_now: bool) -> tuple[Callable[[BulkJob], None] | None, Callable[[BulkJob], None] | None]:
    if not report_now:
        return None, None

    def change(current: BulkJob) -> None:
        current.report_at = datetime.now(UTC)

    def after(stored: BulkJob) -> None:
        _quietly_write(store, settings, stored)

    return change, after


def _quietly_write(store: Store, settings: Settings, job: BulkJob) -> Tally | None:
    try:
        return write_files(store, job, settings)
    except Exception:  # a progress report that fails is written again at the next step
        logger.warning("bulk.report_failed", exc_info=True, extra={"fields": {"job": job.job}})
        return None


def _skip(store: Store, job: BulkJob, line: int, key: str, code: str, message: str) -> None:
    store.bulk.put_skipped(job.job, BulkRow(row_key=skipped_row_key(job.generation, line), key=key, line=line,
                                            generation=job.generation, status=SKIPPED, code=code,
                                            reason=message[:1000]))


def _release_row(store: Store, job: BulkJob, spec: BulkJobSpec, documents: list[StoredDocument],
                 raw: recipients.RawRow) -> int:
    """Record one row: a package (1 when it is new) or a skipped row (0)."""
    if raw.error:
        _skip(store, job, raw.line, f"line {raw.line}", "row_unreadable", raw.error)
        return 0
    key = ""
    try:
        values = normalized_row(raw.values)
        key = row_key(values)
        request = package_request(job.job, spec, values)
        layout.check_explicit_markers(request, documents)
        fields = layout.resolve_signing_fields(request, documents, routing.DEFAULT_MARKER_TEMPLATE)
    except BadRow as bad:
        _skip(store, job, raw.line, key or f"line {raw.line}", bad.code, bad.message)
        return 0
    except Rejection as rejection:
        _skip(store, job, raw.line, key or f"line {raw.line}", rejection.code, rejection.message)
        return 0
    claimed = _claim_key(store, job, key, raw.line)
    if claimed is not None:
        _skip(store, job, raw.line, key, "duplicate_key", f"the key {key!r} is also on line {claimed}")
        return 0
    ref = package_ref_for_row(job.job, key)
    if store.packages.get(ref) is not None:
        return 0  # sent by an earlier upload (or by this step before it was repeated)
    recording.record_accepted(store, ref=ref, source="bulk",
                           source_uri=f"{names.BULK_CONTAINER}/{job.recipients_blob}#{raw.line}",
                           request=request, documents=documents, signing_fields=fields,
                           bulk=(job.job, good_row_key(key)))
    return 1


def _claim_key(store: Store, job: BulkJob, key: str, line: int) -> int | None:
    """Claim the key for this pass; returns the other line of this pass that holds it (a duplicate)."""
    row = BulkRow(row_key=good_row_key(key), key=key, line=line, generation=job.generation,
                  status=PackageStatus.RECEIVED.value, package_ref=package_ref_for_row(job.job, key))
    for _ in range(5):
        if store.bulk.claim_row(job.job, row):
            return None
        found = store.bulk.get_row(job.job, row.row_key)
        if found is None:
            continue
        existing, etag = found
        if existing.generation == job.generation:
            return None if existing.line == line else existing.line
        existing.generation, existing.line = job.generation, line
        if store.bulk.update_row(job.job, existing, etag):
            return None
    raise RuntimeError(f"the row of key {key!r} kept changing")


def _restart_with_new_recipients(store: Store, job: BulkJob, spec: BulkJobSpec) -> _Outcome:
    """The recipients file was replaced while the job ran: a new pass over the new version."""
    try:
        blob_name, etag, columns, offset, first_line, size = jobs.recipients_start(store, job.job, spec)
    except Rejection as rejection:
        log_event(logger, "bulk.recipients_replaced_unreadable", logging.WARNING, job=job.job, code=rejection.code)
        _skip(store, job, job.cursor_line, "(file)", rejection.code, f"the replaced recipients file: {rejection}")

        def stop(current: BulkJob) -> None:
            current.read_done = True
            if current.state is JobState.SENDING:
                current.state = JobState.TRACKING

        return _Outcome(0.0, stop)
    log_event(logger, "bulk.recipients_replaced", job=job.job, generation=job.generation + 1)

    def restart(current: BulkJob) -> None:
        current.generation += 1
        current.recipients_blob, current.recipients_etag, current.columns = blob_name, etag, columns
        current.cursor, current.cursor_line, current.rows_read, current.read_done = offset, first_line, 0, False
        current.recipients_size = size

    return _Outcome(0.0, restart)


def _has_good_row(store: Store, job: BulkJob) -> bool:
    first = next(iter(store.bulk.rows(job.job)), None)  # good rows sort before skipped ones
    return first is not None and not first.skipped


def _reject_for_no_good_row(store: Store, job: BulkJob) -> None:
    skipped = [row for _, row in zip(range(50), store.bulk.rows(job.job), strict=False)
               if row.generation == job.generation]
    rejection = Rejection("no_good_row", f"none of the rows of {job.recipients_blob.rpartition('/')[2] or 'the file'}"
                                         f" can become a package ({len(skipped)} skipped)",
                          [{"line": row.line, "key": row.key, "code": row.code, "message": row.reason}
                           for row in skipped])
    report = write_report(store, source_container=names.BULK_CONTAINER, blob_name=job.recipients_blob,
                          etag=job.recipients_etag, package_ref=None, rejection=rejection)

    def change(current: BulkJob) -> bool:
        if current.generation != job.generation or current.state.is_final:
            return False
        current.state, current.completed_at = JobState.INPUT_REJECTED, datetime.now(UTC)
        current.reason, current.error_report = str(rejection)[:1000], f"{names.ERRORS_CONTAINER}/{report}"
        return True

    stored = store.bulk.mutate(job.job, change)
    if stored is not None and stored.state is JobState.INPUT_REJECTED:
        log_event(logger, "bulk.no_good_row", logging.WARNING, job=job.job, report=stored.error_report)
        jobs.announce_rejection(store, stored, rejection.code, rejection.message)


# ---------------------------------------------------------------------------------------------------
# Tracking and cancelling


def _track(store: Store, settings: Settings, job: BulkJob, client: Callable[[], ConnectiveClient]) -> _Outcome:
    interval = max(1.0, settings.bulk_report_interval_s)
    delay = interval
    if job.state is JobState.CANCELLING:
        revoked_all, wait_s = _cancel_pass(store, settings, job, client)
        if not revoked_all:
            delay = max(1.0, min(interval, wait_s))
    _heal(store, job)
    counts = write_files(store, job, settings)
    if counts.open > 0 or not (job.read_done or job.state is JobState.CANCELLING):
        return _Outcome(delay, lambda current: setattr(current, "report_at", datetime.now(UTC)))
    final = JobState.CANCELLED if job.state is JobState.CANCELLING else JobState.COMPLETED

    def change(current: BulkJob) -> None:
        if current.state is JobState.CANCELLING or current.state is JobState.TRACKING:
            current.state = JobState.CANCELLED if current.state is JobState.CANCELLING else final
            current.completed_at = current.report_at = datetime.now(UTC)

    def after(stored: BulkJob) -> None:
        if not stored.state.is_final:
            return
        final_counts = write_files(store, stored, settings)
        log_event(logger, "bulk.completed", job=stored.job, state=stored.state.value, rows=final_counts.good,
                  skipped=final_counts.skipped)
        publish_event(store, EventType.BULK_COMPLETED, stored.job, {
            "bulkSend": stored.job, "state": stored.state.value, "packages": final_counts.good,
            "skipped": final_counts.skipped,
            "statuses": [{"status": status, "count": count} for status, count in sorted(final_counts.statuses.items())],
            "report": f"{names.BULK_CONTAINER}/{stored.job}/report.csv",
        })

    return _Outcome(delay, change, after)


def _heal(store: Store, job: BulkJob) -> None:
    """When few rows are left open, re-read their package rows: a status the hook failed to copy is caught."""
    open_rows = [row for _, row in zip(range(HEAL_AT_MOST + 1), _not_final(store, job), strict=False)]
    if len(open_rows) > HEAL_AT_MOST:
        return
    for row in open_rows:
        record = store.packages.get(row.package_ref or "")
        if record is not None and record.status.value != row.status:
            store.bulk.set_status(job.job, row.row_key, record.status.value, record.final_reason,
                                  archive_path(record.archive_location))


def _not_final(store: Store, job: BulkJob) -> Iterator[BulkRow]:
    return (row for row in store.bulk.rows(job.job) if not row.skipped and row.status not in FINAL_ROW_STATUSES)


def _cancel_pass(store: Store, settings: Settings, job: BulkJob,
                 client: Callable[[], ConnectiveClient]) -> tuple[bool, float]:
    """Revoke what is still open; (nothing left to revoke, seconds to wait before the next pass)."""
    left = False
    limit = settings.bulk_step_rows
    for index, row in enumerate(store.bulk.rows(job.job, OPEN_ROW_STATUSES)):
        if index >= limit:
            return False, 0.0
        record = store.packages.get(row.package_ref or "")
        if record is None:
            continue
        if record.status is PackageStatus.RECEIVED:
            if not _revoke_uncreated(store, record.ref):
                left = True
        elif record.status is PackageStatus.CREATING:
            left = True  # a creation is under way; its package is revoked at a later pass
        elif record.status in (PackageStatus.PENDING, PackageStatus.EXPIRED) and record.connective_package_id:
            try:
                info = client().set_package_status(record.connective_package_id, "Revoked")
            except RetryLater as deferred:  # no rate token, or throttled: this pass comes back later
                return False, deferred.retry_after_s
            except ConnectiveError as error:
                log_event(logger, "bulk.revoke_failed", logging.WARNING, job=job.job, package_ref=record.ref,
                          error=type(error).__name__)
                left = True
                continue
            status_sync.apply_status(store, record.ref, info, source="bulk-cancel")
            store.events.append(record.ref, "revoke_requested", bulk_send=job.job)
    return not left, 1.0


def _revoke_uncreated(store: Store, ref: str) -> bool:
    def change(record: PackageRecord) -> bool:
        if record.status is not PackageStatus.RECEIVED:
            return False
        record.status = PackageStatus.REVOKED
        record.final_reason = CANCELLED_BEFORE_CREATION
        return True

    stored = store.packages.mutate(ref, change)
    if stored is not None and stored.status is PackageStatus.REVOKED:
        store.events.append(ref, "revoked_before_creation", reason=CANCELLED_BEFORE_CREATION)
        return True
    return False


def cancel(store: Store, job_id: str) -> BulkJob | None:
    """Ask for the job to stop: no new rows, and its open packages revoked by the next steps."""
    def change(job: BulkJob) -> bool:
        if job.state.is_final or job.state is JobState.CANCELLING:
            return False
        job.state = JobState.CANCELLING
        job.cancel_requested_at = datetime.now(UTC)
        return True

    stored = store.bulk.mutate(job_id, change)
    if stored is not None and not stored.state.is_final:
        jobs.send_step(store, stored)  # at once; the step already queued, if any, becomes a stale duplicate
    return stored


__all__ = ["FINAL_ROW_STATUSES", "cancel", "run_step"]
