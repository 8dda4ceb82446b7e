"""The kinds of upkeep, each done for one package whose index row a runner has claimed.

Each handler re-reads nothing itself: it gets the package row as just read, decides from the row
and the policy whether the work is really due (the index may be early or stale), acts, and records
what it did on the row (ETag-guarded). The runner then moves the index row to the next due time.

Reminders are recorded on the row BEFORE they are sent, under an ETag and only while still due, so
two runners, or a runner and a retry, never send the same reminder twice; a reminder that surely
was not sent (no token, 409, a refusal not possibly applied) is taken back.

A row stuck before Pending gets its `package-requests` message again. That is always safe: creation
holds a lease against parallel attempts and looks the package up by ExternalPackageReference before it
creates anything, so a repeated message never makes a second package. Likewise a row stuck in Finished
gets its `archive-requests` message again; the archive is idempotent. And a bulk send whose chain of
`bulk-feed` steps went quiet gets its current step's message again: the job row names the one step it
expects, so a step that was only late, or sent twice, runs once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from shared.bulk.jobs import send_step
from shared.connective.client import ConnectiveClient
from shared.connective.errors import (
    AmbiguousRequestError,
    ConflictError,
    ConnectiveHTTPError,
    NotFoundError,
    RetryLater,
)
from shared.logging import get_logger, log_event
from shared.maintenance.budget import RunBudget
from shared.pipeline.status_sync import apply_status, archive_message
from shared.storage import names
from shared.storage.bulk import BulkJob, BulkSendRepository
from shared.storage.packages import PackageRecord, PackageRepository
from shared.storage.schedule import DuePolicy, WorkKind, last_heard_of
from shared.storage.store import Store
from shared.telemetry import with_trace

_log = get_logger(__name__)


class Outcome(StrEnum):
    REMINDED = "reminded"
    EXTENDED = "extended"
    RECONCILED = "reconciled"
    NOT_DUE = "not-due"  # the index was early: the row is moved to the real due time
    NOT_FOUND = "not-found"  # Connective does not know the package
    RESENT = "resent"  # the creation or archive request of a stuck row went to its queue again


@dataclass
class WorkContext:
    store: Store
    client: ConnectiveClient
    budget: RunBudget
    policy: DuePolicy
    extend_by: timedelta
    clock: Callable[[], datetime]


def remind(context: WorkContext, record: PackageRecord) -> Outcome:
    now = context.clock()
    due = context.policy.reminder_due(record)
    if due is None or due > now:
        return Outcome.NOT_DUE
    context.budget.take_call()
    taken = _count_reminder(context, record.ref, now)
    if taken is None:
        return Outcome.NOT_DUE  # another runner sent it since the row was read
    counted, previous_at = taken
    assert counted.connective_package_id
    try:
        context.client.send_package_reminders(counted.connective_package_id)
    except AmbiguousRequestError:
        # It may have gone out: keep it counted, so no signer gets a second mail this interval.
        log_event(_log, "maintenance.reminder_unclear", logging.WARNING, package_ref=record.ref)
        raise
    except RetryLater:
        _uncount_reminder(context, record.ref, now, previous_at)
        raise
    except ConnectiveHTTPError as error:
        if error.possibly_applied:
            raise
        _uncount_reminder(context, record.ref, now, previous_at)
        if isinstance(error, ConflictError):
            # Connective says the package is not Pending: our row missed a change. Read it instead.
            return reconcile(context, record, force=True)
        raise
    context.store.events.append(record.ref, "reminder_sent", source="maintenance", count=counted.reminder_count)
    log_event(_log, "maintenance.reminded", package_ref=record.ref, count=counted.reminder_count)
    return Outcome.REMINDED


def _count_reminder(context: WorkContext, ref: str, now: datetime) -> tuple[PackageRecord, datetime | None] | None:
    """Record the reminder if it is still due. Returns the row and the previous reminder time, or None."""
    counted = False
    previous_at: datetime | None = None

    def change(row: PackageRecord) -> bool:
        nonlocal counted, previous_at
        due = context.policy.reminder_due(row)
        counted = due is not None and due <= now
        if counted:
            previous_at = row.last_reminder_at
            row.reminder_count += 1
            row.last_reminder_at = now
        return counted

    row = context.store.packages.mutate(ref, change)
    return (row, previous_at) if counted and row is not None else None


def _uncount_reminder(context: WorkContext, ref: str, sent_at: datetime, previous_at: datetime | None) -> None:
    """Take back a reminder that was surely not sent, unless the row moved on since."""

    def change(row: PackageRecord) -> bool:
        if row.last_reminder_at != sent_at or row.reminder_count < 1:
            return False
        row.reminder_count -= 1
        row.last_reminder_at = previous_at
        return True

    context.store.packages.mutate(ref, change)


def extend_or_record_expiry(context: WorkContext, record: PackageRecord) -> Outcome:
    """Before the expiry, with extensions left: extend it. At or after it: read the status, so an expiry
    Connective never called back about is recorded."""
    now = context.clock()
    expiry = record.expiry_timestamp
    due = context.policy.expiry_due(record)
    if expiry is None or due is None or due > now:
        return Outcome.NOT_DUE
    if now >= expiry or not context.policy.can_extend(record):
        return reconcile(context, record, force=True)
    assert record.connective_package_id
    extended_to = expiry + context.extend_by
    context.budget.take_call()
    try:
        context.client.expiry_time_stamp(record.connective_package_id, extended_to)
    except ConflictError:
        return reconcile(context, record, force=True)
    _record_extension(context, record, extended_to)
    return Outcome.EXTENDED


def _record_extension(context: WorkContext, seen: PackageRecord, extended_to: datetime) -> None:
    """Count the extension once. Setting an absolute timestamp is idempotent at Connective, so a second
    runner that extended from the same expiry changed nothing there, and must not count again here."""
    counted = False

    def change(row: PackageRecord) -> bool:
        nonlocal counted
        counted = row.extension_count == seen.extension_count
        if not counted:
            return False
        row.extension_count += 1
        if row.expiry_timestamp is None or row.expiry_timestamp < extended_to:
            row.expiry_timestamp = extended_to
        return True

    row = context.store.packages.mutate(seen.ref, change)
    if counted and row is not None:
        context.store.events.append(seen.ref, "expiry_extended", source="maintenance", previous=seen.expiry_timestamp,
                                    expiry=extended_to, count=row.extension_count)
        log_event(_log, "maintenance.extended", package_ref=seen.ref, expiry=extended_to.isoformat(),
                  count=row.extension_count)


def reconcile(context: WorkContext, record: PackageRecord, force: bool = False) -> Outcome:
    """Re-read the status of a package no callback has refreshed for a while, and merge it."""
    now = context.clock()
    if not force and last_heard_of(record) + context.policy.reconcile_after > now:
        return Outcome.NOT_DUE
    assert record.connective_package_id
    context.budget.take_call()
    try:
        info = context.client.get_package_status(record.connective_package_id)
    except NotFoundError:
        _note_missing(context, record.ref, now)
        return Outcome.NOT_FOUND
    result = apply_status(context.store, record.ref, info, source="reconcile", now=now)
    if result.status_changed:
        log_event(_log, "maintenance.reconciled", package_ref=record.ref,
                  previous=result.previous_status.value if result.previous_status else None,
                  status=result.status.value if result.status else None)
    return Outcome.RECONCILED


def _note_missing(context: WorkContext, ref: str, now: datetime) -> None:
    """Connective no longer knows the package. Noted, and the read time moves on so it is not re-read at once."""

    def change(row: PackageRecord) -> bool:
        row.last_error = "reconcile: the package is not found at Connective"
        row.last_status_read_at = now
        return True

    context.store.packages.mutate(ref, change)
    context.store.events.append(ref, "reconcile_not_found", source="maintenance")
    log_event(_log, "maintenance.not_found", logging.WARNING, package_ref=ref)


@dataclass(frozen=True)
class StuckRequest:
    """A queue request the timer sends again for a row that sat too long short of its next status."""

    event: str  # the PackageEvents kind, and the log event after "maintenance."
    queue: str
    message: Callable[[str], dict[str, Any]]  # the queue message for a packageRef
    due: Callable[[DuePolicy, PackageRecord], datetime | None]
    resends: str  # the PackageRecord attribute counting the re-sends
    note: Callable[[PackageRecord, datetime], None] = lambda row, now: None  # further changes to record it


def _resend(context: WorkContext, record: PackageRecord, stuck: StuckRequest, **details: Any) -> Outcome:
    due = stuck.due(context.policy, record)
    now = context.clock()
    if due is None or due > now:
        return Outcome.NOT_DUE
    # Sent before it is counted: a crash in between sends it once more later, which is harmless, while
    # counting first could lose the message.
    context.store.clients.send_json(stuck.queue, with_trace(stuck.message(record.ref), record.trace_parent))
    seen: int = getattr(record, stuck.resends)

    def change(row: PackageRecord) -> bool:
        if getattr(row, stuck.resends) != seen or stuck.due(context.policy, row) is None:
            return False
        setattr(row, stuck.resends, seen + 1)
        stuck.note(row, now)
        return True

    row = context.store.packages.mutate(record.ref, change)
    count = getattr(row, stuck.resends) if row is not None else seen + 1
    context.store.events.append(record.ref, stuck.event, source="maintenance", status=record.status.value,
                                count=count, stuck_since=record.updated_at, **details)
    log_event(_log, f"maintenance.{stuck.event}", logging.WARNING, package_ref=record.ref,
              status=record.status.value, count=count)
    return Outcome.RESENT


def _note_archive_request(row: PackageRecord, now: datetime) -> None:
    row.archive_requested_at = now  # so a callback on the row now does not ask a third time


STUCK_CREATION = StuckRequest(
    event="creation_resent", queue=names.PACKAGE_REQUESTS_QUEUE, message=lambda ref: {"packageRef": ref},
    due=DuePolicy.recreate_due, resends="creation_resends")
STUCK_ARCHIVE = StuckRequest(
    event="archive_resent", queue=names.ARCHIVE_REQUESTS_QUEUE,
    message=lambda ref: archive_message(ref, reason="maintenance"), due=DuePolicy.archive_due,
    resends="archive_resends", note=_note_archive_request)


def resend_creation(context: WorkContext, record: PackageRecord) -> Outcome:
    """Send the creation request of a row that has sat in Received, or in Creating with no live attempt,
    for too long: its message went to the poison queue, or the process died before it was sent."""
    return _resend(context, record, STUCK_CREATION)


def resend_archive(context: WorkContext, record: PackageRecord) -> Outcome:
    """Send the archive request of a row that has sat in Finished for too long: the reader that moved it
    there died before it sent the request, or the message went to the poison queue. Archiving is
    idempotent (files already stored are not fetched again; an Archived row is left as it is)."""
    return _resend(context, record, STUCK_ARCHIVE, requested_at=record.archive_requested_at)


def resend_bulk_step(context: WorkContext, job: BulkJob) -> Outcome:
    """Send the current step of a bulk send whose steps went quiet: a step died between writing the job
    and sending the next message, or the message went to the poison queue."""
    due = context.policy.bulk_step_due(job)
    now = context.clock()
    if due is None or due > now:
        return Outcome.NOT_DUE
    # Sent before it is counted, as above; the job's step number keeps a repeat from running twice.
    send_step(context.store, job)
    seen_step, seen = job.step, job.step_resends

    def change(row: BulkJob) -> bool:
        if row.step != seen_step or row.step_resends != seen or context.policy.bulk_step_due(row) is None:
            return False
        row.step_resends = seen + 1
        return True

    context.store.bulk.mutate(job.job, change)
    log_event(_log, "maintenance.bulk_step_resent", logging.WARNING, job=job.job, step=job.step,
              state=job.state.value, count=seen + 1, stuck_since=job.updated_at.isoformat())
    return Outcome.RESENT


HANDLERS: dict[WorkKind, Callable[[WorkContext, Any], Outcome]] = {
    WorkKind.REMINDER: remind,
    WorkKind.EXPIRY: extend_or_record_expiry,
    WorkKind.RECONCILE: reconcile,
    WorkKind.RECREATE: resend_creation,
    WorkKind.ARCHIVE: resend_archive,
    WorkKind.BULK_STEP: resend_bulk_step,
}


def rows_of(store: Store, kind: WorkKind) -> PackageRepository | BulkSendRepository:
    """The table whose rows `kind`'s index rows point at: job rows for BULK_STEP, package rows otherwise."""
    return store.bulk if kind is WorkKind.BULK_STEP else store.packages
