"""The `PackageSchedule` table: index rows of due upkeep, so the timer's cost follows the due work.

A timer that scanned `SigningPackages` would read every tracked package on every tick. Instead each
package that has upkeep ahead keeps at most one index row per kind of work:

    PartitionKey = due-{yyyymmddhh}        the hour its work falls due (UTC)
    RowKey       = {kind}-{packageRef}     kind: reminder | expiry | reconcile | recreate | archive
                 = bulk-step-{job}          a bulk send whose chain of `bulk-feed` steps went quiet
    DueAt        = when the work falls due
    NotBefore    = when a runner may take it: DueAt, pushed later by a claim or a back-off

A bulk send (`BulkSends` job row, shared.storage.bulk) that is not final keeps one `bulk-step` row the
same way, through `before_job_write`, a hook of `BulkSendRepository`: its PackageRef column then holds
the job id.

A run reads the partitions from the first one up to the current hour, so archived and otherwise ended
packages (which have no rows) cost nothing, however many there are.

Rows are hints; the package row stays the truth. Two rules keep them useful:

- The index is never late. Every write of a package row goes through `before_write` (a hook of
  `PackageRepository`), which computes the due times from the row and the policy and writes an index
  row before the package row whenever work falls due earlier than the index says. The package row
  remembers the due time its index row holds (`index_<kind>_at`), so most writes (a callback, a
  status read) need no index write at all.
- The index may be early or stale. When due work moves later (a callback pushes reconciliation out),
  the old row stays; the runner that takes it re-reads the package, finds nothing due yet, and moves
  the row to the real due time. Work that no longer exists (a final status, the last reminder sent)
  has its row deleted after the package row is written.

Claims are ETag-guarded updates of `NotBefore`, so two runners never take the same row at once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from shared.config import Settings
from shared.storage.bulk import BulkJob
from shared.storage.packages import PackageRecord
from shared.storage.status import UNCREATED, PackageStatus

BUCKET_PREFIX = "due-"
_BUCKET_FORMAT = "%Y%m%d%H"
CHECKPOINT_PARTITION = "checkpoint"  # sorts before "due-", so the due scan never sees it
# Actor statuses after which a signer has nothing left to do (Connective ActorStatus, lower case).
_ACTED = frozenset({"finished", "rejected", "failed", "skipped"})
_OPEN = frozenset({PackageStatus.PENDING, PackageStatus.EXPIRED})
# A row stuck before Pending gets its creation request again at most this many times, each after twice
# the wait of the previous one; past that it waits for an operator (docs/MANIFEST.md, recovery).
MAX_CREATION_RESENDS = 5
# Likewise a Finished row that is not archived gets its archive request again at most this many times.
MAX_ARCHIVE_RESENDS = 5
# And a bulk send whose step chain went quiet gets its current step again at most this many times in a
# row (the count starts again whenever a step runs).
MAX_BULK_STEP_RESENDS = 5


class WorkKind(StrEnum):
    REMINDER = "reminder"  # Send Package Reminders
    EXPIRY = "expiry"  # extend an expiry that is near, or record the expiry once extensions are used up
    RECONCILE = "reconcile"  # re-read a status no callback has refreshed for a while
    RECREATE = "recreate"  # send the creation request of a row stuck in Received/Creating again
    ARCHIVE = "archive"  # send the archive request of a row stuck in Finished again
    BULK_STEP = "bulk-step"  # send the current `bulk-feed` step of a bulk send whose steps went quiet

    @property
    def index_field(self) -> str:
        """The attribute of the package row (or, for BULK_STEP, the job row) holding the due time of this
        kind's index row."""
        return f"index_{self.value.replace('-', '_')}_at"


PACKAGE_KINDS = tuple(kind for kind in WorkKind if kind is not WorkKind.BULK_STEP)


def bulk_quiet_after(settings: Settings) -> timedelta:
    """How long a bulk send's chain of steps may stay quiet before its step counts as lost: well past the
    longest delay a step puts before the next (a report interval, a quarter of a rate window)."""
    longest = max(settings.bulk_report_interval_s, settings.connective_rate_window_s)
    return timedelta(seconds=3 * longest + 60)


@dataclass(frozen=True)
class ReminderPolicy:
    first_after: timedelta
    every: timedelta
    max_count: int

    def overridden_by(self, override: dict[str, Any]) -> ReminderPolicy:
        """This policy with a package's own `{firstAfterHours, everyHours, maxCount}` applied."""
        first, every, count = (override.get(key) for key in ("firstAfterHours", "everyHours", "maxCount"))
        return ReminderPolicy(
            first_after=timedelta(hours=first) if first is not None else self.first_after,
            every=timedelta(hours=every) if every is not None else self.every,
            max_count=int(count) if count is not None else self.max_count,
        )


@dataclass(frozen=True)
class DuePolicy:
    """When each kind of upkeep falls due for a package row."""

    reminders: ReminderPolicy
    expiry_window: timedelta
    max_extensions: int
    reconcile_after: timedelta
    stuck_creation_after: timedelta = timedelta(minutes=30)
    stuck_archive_after: timedelta = timedelta(minutes=15)
    bulk_quiet_after: timedelta = timedelta(minutes=4)

    @classmethod
    def from_settings(cls, settings: Settings) -> DuePolicy:
        return cls(
            reminders=ReminderPolicy(
                first_after=timedelta(hours=settings.reminder_first_after_h),
                every=timedelta(hours=settings.reminder_every_h),
                max_count=settings.reminder_max_count,
            ),
            expiry_window=timedelta(hours=settings.expiry_window_h),
            max_extensions=settings.expiry_max_extensions,
            reconcile_after=timedelta(hours=settings.reconcile_after_h),
            stuck_creation_after=timedelta(minutes=settings.stuck_creation_after_min),
            stuck_archive_after=timedelta(minutes=settings.archive_stuck_after_min),
            bulk_quiet_after=bulk_quiet_after(settings),
        )

    def reminders_for(self, record: PackageRecord) -> ReminderPolicy:
        return self.reminders.overridden_by(record.reminder_policy or {})

    def due_times(self, record: PackageRecord) -> dict[WorkKind, datetime]:
        """The upkeep `record` has ahead, and when each falls due. Empty for final packages, but for a
        Finished one's archive."""
        candidates = [(WorkKind.RECREATE, self.recreate_due), (WorkKind.ARCHIVE, self.archive_due)]
        is_open = record.status in _OPEN and bool(record.connective_package_id)
        if is_open:
            candidates += [(WorkKind.REMINDER, self.reminder_due), (WorkKind.EXPIRY, self.expiry_due)]
        due = {kind: at for kind, when in candidates if (at := when(record)) is not None}
        if is_open:
            due[WorkKind.RECONCILE] = last_heard_of(record) + self.reconcile_after
        return due

    def reminder_due(self, record: PackageRecord) -> datetime | None:
        policy = self.reminders_for(record)
        if (record.status != PackageStatus.PENDING or record.reminder_count >= policy.max_count
                or not has_signers_to_act(record)):
            return None
        if record.reminder_count == 0 or record.last_reminder_at is None:
            return (record.pending_since or record.created_at) + policy.first_after
        return record.last_reminder_at + policy.every

    def expiry_due(self, record: PackageRecord) -> datetime | None:
        """Before the expiry while an extension is left; at the expiry otherwise, to record it."""
        if record.status != PackageStatus.PENDING or record.expiry_timestamp is None:
            return None
        if self.can_extend(record):
            return record.expiry_timestamp - self.expiry_window
        return record.expiry_timestamp

    def can_extend(self, record: PackageRecord) -> bool:
        return record.extension_count < self.max_extensions

    def recreate_due(self, record: PackageRecord) -> datetime | None:
        """When a row that has not reached Pending counts as stuck: its creation request was lost.

        Stuck means no write for `stuck_creation_after` (doubled after each re-send), and no live creation
        attempt. Any write counts as progress: a creation deferred for want of a rate token writes the row
        each time its message comes back, so a backlog draining at the rate budget is never re-sent.
        """
        if record.status not in UNCREATED or record.creation_resends >= MAX_CREATION_RESENDS:
            return None
        due = record.updated_at + self.stuck_creation_after * 2**record.creation_resends
        lease = record.creation_lease_until
        if record.status is PackageStatus.CREATING and lease is not None and lease > due:
            return lease
        return due

    def archive_due(self, record: PackageRecord) -> datetime | None:
        """When a Finished row counts as stuck short of Archived: its archive request was never sent (the
        reader died between its write and the send) or was lost (poison queue).

        Stuck means no write for `stuck_archive_after` (doubled after each re-send). The request, each
        archive attempt that finds the files not ready and each callback write the row, so an archive
        under way moves the due time on.
        """
        if (record.status is not PackageStatus.FINISHED or not record.connective_package_id
                or record.archive_resends >= MAX_ARCHIVE_RESENDS):
            return None
        return record.updated_at + self.stuck_archive_after * 2**record.archive_resends

    def bulk_step_due(self, job: BulkJob) -> datetime | None:
        """When a bulk send that is not final counts as stalled: its next `bulk-feed` message was never sent
        (the step died between its write and the send) or was lost (poison queue).

        Stalled means no write of the job row for `bulk_quiet_after` (doubled after each re-send). Every
        step writes the row, so a job whose steps run is never due; `step_resends` starts again at each step.
        """
        if job.state.is_final or job.step_resends >= MAX_BULK_STEP_RESENDS:
            return None
        return job.updated_at + self.bulk_quiet_after * 2**job.step_resends


def last_heard_of(record: PackageRecord) -> datetime:
    """The last time we learnt anything about the package from Connective (or it started)."""
    moments = [record.last_callback_at, record.last_status_read_at, record.pending_since, record.created_at]
    return max(moment for moment in moments if moment is not None)


def has_signers_to_act(record: PackageRecord) -> bool:
    """True while a signer (not a receiver) has not acted. Unknown signers count as waiting."""
    signers = [entry for entry in record.signers if str(entry.get("type") or "Signer").lower() != "receiver"]
    if not signers:
        return True
    return any(str(entry.get("status") or "").lower() not in _ACTED for entry in signers)


def bucket_of(moment: datetime) -> str:
    return BUCKET_PREFIX + moment.astimezone(UTC).strftime(_BUCKET_FORMAT)


def row_key(kind: WorkKind, ref: str) -> str:
    return f"{kind.value}-{ref}"


@dataclass(frozen=True)
class ScheduleEntry:
    """One index row as a runner read or claimed it."""

    kind: WorkKind
    package_ref: str
    due_at: datetime
    partition: str
    etag: str | None

    @property
    def row_key(self) -> str:
        return row_key(self.kind, self.package_ref)

    def is_current_for(self, record: PackageRecord | BulkJob) -> bool:
        """True when the package (or job) row names this entry's bucket as its index row; else it is stale."""
        indexed = getattr(record, self.kind.index_field)
        return indexed is not None and bucket_of(indexed) == self.partition

    @classmethod
    def from_entity(cls, entity: Any) -> ScheduleEntry:
        return cls(kind=WorkKind(entity["Kind"]), package_ref=entity["PackageRef"], due_at=entity["DueAt"],
                   partition=entity["PartitionKey"], etag=entity.metadata.get("etag"))


class PackageSchedule:
    def __init__(self, table: TableClient, policy: DuePolicy) -> None:
        self._table = table
        self.policy = policy

    # -- the write hook of PackageRepository ----------------------------------------------------------

    def before_write(self, record: PackageRecord) -> Callable[[], None] | None:
        """Bring the index in step with `record`, which is about to be written (see `_sync`)."""
        return self._sync(record, record.ref, self.policy.due_times(record), PACKAGE_KINDS)

    def before_job_write(self, job: BulkJob) -> Callable[[], None] | None:
        """Bring the job's `bulk-step` index row in step with `job`, which is about to be written."""
        due = self.policy.bulk_step_due(job)
        return self._sync(job, job.job, {WorkKind.BULK_STEP: due} if due is not None else {},
                          (WorkKind.BULK_STEP,))

    def _sync(self, subject: PackageRecord | BulkJob, key: str, due: dict[WorkKind, datetime],
              kinds: tuple[WorkKind, ...]) -> Callable[[], None] | None:
        """Bring the index rows of `kinds` in step with `subject` (a package or job row about to be written).

        Index rows for work that falls due earlier than indexed are written now, before the package
        row, so a crash in between leaves an early row (harmless) and never a missing one. Rows for
        work that no longer exists are deleted by the returned callable, after the package row is
        written.
        """
        obsolete: list[tuple[str, str]] = []
        for kind in kinds:
            indexed: datetime | None = getattr(subject, kind.index_field)
            wanted = due.get(kind)
            if wanted is None:
                if indexed is not None:
                    obsolete.append((bucket_of(indexed), row_key(kind, key)))
                    setattr(subject, kind.index_field, None)
            elif indexed is None or wanted < indexed:
                self._put(kind, key, wanted)
                setattr(subject, kind.index_field, wanted)
        if not obsolete:
            return None
        return lambda: self._delete_rows(obsolete)

    def _put(self, kind: WorkKind, ref: str, due_at: datetime) -> None:
        self._table.upsert_entity({
            "PartitionKey": bucket_of(due_at), "RowKey": row_key(kind, ref), "Kind": kind.value,
            "PackageRef": ref, "DueAt": due_at, "NotBefore": due_at, "ClaimedBy": "",
        }, mode=UpdateMode.REPLACE)

    def _delete_rows(self, keys: list[tuple[str, str]]) -> None:
        for partition, key in keys:
            with contextlib.suppress(ResourceNotFoundError):
                self._table.delete_entity(partition, key)

    # -- runners ---------------------------------------------------------------------------------

    def due_pages(self, now: datetime, page_size: int = 100) -> Iterator[list[ScheduleEntry]]:
        """Index rows a runner may take at `now`, page by page, earliest hour first.

        Only the partitions up to the current hour are read; rows handled meanwhile drop out.
        """
        pages = self._table.query_entities(
            "PartitionKey ge @first and PartitionKey le @last and NotBefore le @now",
            parameters={"first": BUCKET_PREFIX, "last": bucket_of(now), "now": now},
            results_per_page=page_size,
        ).by_page()
        for page in pages:
            entries = [ScheduleEntry.from_entity(entity) for entity in page]
            if entries:
                yield entries

    def claim(self, entry: ScheduleEntry, owner: str, until: datetime) -> ScheduleEntry | None:
        """Take `entry` for `owner` until `until`. None when someone else changed or took it first."""
        updated = self._guarded_merge(entry, {"NotBefore": until, "ClaimedBy": owner})
        if updated is None:
            return None
        return ScheduleEntry(entry.kind, entry.package_ref, entry.due_at, entry.partition, updated)

    def put_back(self, entry: ScheduleEntry, not_before: datetime, **details: Any) -> None:
        """Release a claimed entry, to be taken again from `not_before` (at once, or after a back-off)."""
        self._guarded_merge(entry, {"NotBefore": not_before, "ClaimedBy": "", **details})

    def complete(self, entry: ScheduleEntry) -> None:
        """Delete a handled entry, unless it was rewritten since it was claimed (then it holds newer work)."""
        try:
            self._table.delete_entity(entry.partition, entry.row_key, etag=entry.etag,
                                      match_condition=MatchConditions.IfNotModified)
        except HttpResponseError as error:
            if error.status_code not in (404, 412):
                raise

    def _guarded_merge(self, entry: ScheduleEntry, changes: dict[str, Any]) -> str | None:
        try:
            metadata = self._table.update_entity(
                {"PartitionKey": entry.partition, "RowKey": entry.row_key, **changes}, mode=UpdateMode.MERGE,
                etag=entry.etag, match_condition=MatchConditions.IfNotModified)
        except HttpResponseError as error:
            if error.status_code in (404, 412):
                return None
            raise
        etag: str | None = metadata.get("etag")
        return etag

    # -- checkpoints of periodic work (the Package List sweep) -------------------------------------------

    def checkpoint(self, name: str) -> tuple[dict[str, Any], str | None]:
        """The saved state of a periodic job and its ETag ({} and None before its first save)."""
        try:
            entity = self._table.get_entity(CHECKPOINT_PARTITION, name)
        except ResourceNotFoundError:
            return {}, None
        state = {key: value for key, value in entity.items() if key not in ("PartitionKey", "RowKey")}
        return state, entity.metadata.get("etag")

    def save_checkpoint(self, name: str, state: dict[str, Any], etag: str | None) -> str | None:
        """Write the state if nobody saved it since `etag` was read (None: only if it does not exist).

        Returns the new ETag, or None when another runner got there first.
        """
        entity = {"PartitionKey": CHECKPOINT_PARTITION, "RowKey": name,
                  **{key: value for key, value in state.items() if value is not None}}
        try:
            if etag is None:
                metadata = self._table.create_entity(entity)
            else:
                metadata = self._table.update_entity(entity, mode=UpdateMode.REPLACE, etag=etag,
                                                     match_condition=MatchConditions.IfNotModified)
        except HttpResponseError as error:
            if error.status_code in (409, 412):
                return None
            raise
        new_etag: str | None = metadata.get("etag")
        return new_etag
