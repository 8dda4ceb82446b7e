"""The `BulkSends` table: one partition per bulk send (PartitionKey = the job id).

- RowKey `job`: the job itself (`BulkJob`): its state, the validated job spec and documents, where
  the reader of the recipients file stands (byte offset and line), and the generation (each upload
  of job.json, or a recipients file replaced while the job runs, starts a new pass over the file).
- RowKey `r-{hash of the row key}`: one good row (`BulkRow`), with its packageRef and the status of
  its package. The entity is the claim on the key: a second row with the same key in the same pass
  is a duplicate; in a later pass it is a row sent before.
- RowKey `x-{generation}-{line}`: one skipped (bad) row of a pass, with the reason.

The status of a good row follows its package row: every write of a package row that belongs to a
bulk send goes through `BulkRowHook`, which merges the new status into the row entity when it changed
(`PackageRecord.bulk_row_status` remembers what the entity holds, so most writes cost nothing). So a
report or a progress answer reads one partition, never every package row.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode
from pydantic import BaseModel, ConfigDict, Field

from shared.storage.names import SIGNED_CONTAINER
from shared.storage.packages import PackageRecord
from shared.storage.status import PackageStatus

JOB_ROW = "job"
GOOD_PREFIX = "r-"
SKIPPED_PREFIX = "x-"
SKIPPED = "Skipped"  # the status a bad row shows in the report


def utcnow() -> datetime:
    return datetime.now(UTC)


_JOB_JSON_FIELDS = ("spec", "documents", "columns")


class JobState(StrEnum):
    SENDING = "Sending"  # rows are being read and their packages created
    TRACKING = "Tracking"  # every row is read; waiting for every package to reach a final state
    COMPLETED = "Completed"  # every package is final; the report is final
    CANCELLING = "Cancelling"  # cancel asked: no new rows; pending packages are being revoked
    CANCELLED = "Cancelled"  # cancelled, and every package it had is final
    INPUT_REJECTED = "InputRejected"  # the job, or every one of its rows, is unusable; an error report says why

    @property
    def is_final(self) -> bool:
        return self in (JobState.COMPLETED, JobState.CANCELLED, JobState.INPUT_REJECTED)


class BulkJob(BaseModel):
    model_config = ConfigDict(extra="ignore")

    job: str
    state: JobState = JobState.SENDING
    source: str = "blob"  # blob | api
    generation: int = 1
    step: int = 0  # the bulk-feed step the job expects next; any other message is a stale duplicate
    recipients_size: int = 0
    rows_read: int = 0  # rows of this generation read so far (blank lines not counted)
    job_etag: str = ""  # the job.json version this generation started from
    spec: dict[str, Any] = Field(default_factory=dict)  # the validated job.json (wire form)
    documents: list[dict[str, Any]] = Field(default_factory=list)  # StoredDocument dumps
    recipients_blob: str = ""
    recipients_etag: str = ""
    columns: list[str] = Field(default_factory=list)  # CSV header, as written
    cursor: int = 0  # byte offset of the next unread row
    cursor_line: int = 0  # line (CSV) or item (JSON) number of the last row read
    read_done: bool = False
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    report_at: datetime | None = None
    completed_at: datetime | None = None
    cancel_requested_at: datetime | None = None
    reason: str | None = None
    error_report: str | None = None
    step_resends: int = 0  # times the timer sent the current step again (shared.maintenance); 0 at each step
    index_bulk_step_at: datetime | None = None  # the due time the job's PackageSchedule row holds
    etag: str | None = Field(default=None, exclude=True)

    def to_entity(self) -> dict[str, Any]:
        entity: dict[str, Any] = {"PartitionKey": self.job, "RowKey": JOB_ROW}
        for name, value in self.model_dump(exclude={"job", "etag"}).items():
            key = _pascal(name)
            if name in _JOB_JSON_FIELDS:
                entity[key + "Json"] = json.dumps(value, separators=(",", ":"), default=str)
            elif value is not None:
                entity[key] = value.value if isinstance(value, StrEnum) else value
        return entity

    @classmethod
    def from_entity(cls, entity: Any) -> BulkJob:
        data: dict[str, Any] = {"job": entity["PartitionKey"]}
        for name in cls.model_fields:
            if name in ("job", "etag"):
                continue
            key = _pascal(name)
            if name in _JOB_JSON_FIELDS:
                raw = entity.get(key + "Json")
                if raw:
                    data[name] = json.loads(raw)
            elif entity.get(key) is not None:
                data[name] = entity[key]
        job = cls.model_validate(data)
        job.etag = entity.metadata.get("etag") if hasattr(entity, "metadata") else None
        return job


class BulkRow(BaseModel):
    """One row of the report: a good row (with its package) or a skipped one (with the reason)."""

    model_config = ConfigDict(extra="ignore")

    row_key: str
    key: str
    line: int
    generation: int
    status: str
    package_ref: str | None = None
    code: str | None = None
    reason: str | None = None
    archive_path: str | None = None

    @property
    def skipped(self) -> bool:
        return self.row_key.startswith(SKIPPED_PREFIX)

    @classmethod
    def from_entity(cls, entity: Any) -> BulkRow:
        return cls(row_key=entity["RowKey"], key=entity.get("Key", ""), line=int(entity.get("Line") or 0),
                   generation=int(entity.get("Generation") or 0), status=entity.get("Status") or "",
                   package_ref=entity.get("PackageRef"), code=entity.get("Code"), reason=entity.get("Reason"),
                   archive_path=entity.get("ArchivePath"))


def _pascal(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def good_row_key(key: str) -> str:
    return GOOD_PREFIX + hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


def skipped_row_key(generation: int, line: int) -> str:
    return f"{SKIPPED_PREFIX}{generation:06d}-{line:09d}"


# Filters with 0 to 6 status alternatives; the values always travel as parameters (@s0, @s1, ...). Spaces
# around the parentheses: the SDK finds @parameters by splitting the filter on spaces.
_STATUS_PARAMETERS = ("s0", "s1", "s2", "s3", "s4", "s5")
_ROWS_FILTER = "PartitionKey eq @job and RowKey gt @after"
_STATUS_FILTERS = (_ROWS_FILTER, *(_ROWS_FILTER + " and ( " + " or ".join("Status eq @" + name
                                                                          for name in _STATUS_PARAMETERS[:count]) + " )"
                                   for count in range(1, len(_STATUS_PARAMETERS) + 1)))


JobWriteHook = Callable[[BulkJob], Callable[[], None] | None]


class BulkSendRepository:
    def __init__(self, table: TableClient, hook: JobWriteHook | None = None) -> None:
        self._table = table
        # Every job row write passes through here, so the hook (the PackageSchedule index of stalled jobs,
        # `PackageSchedule.before_job_write`) cannot be forgotten. It may edit the job; what it returns
        # runs once the write succeeded.
        self._hook = hook

    def _before_write(self, job: BulkJob) -> Callable[[], None] | None:
        return self._hook(job) if self._hook is not None else None

    # ---- the job ------------------------------------------------------------------------------

    def get(self, job: str) -> BulkJob | None:
        try:
            return BulkJob.from_entity(self._table.get_entity(job, JOB_ROW))
        except ResourceNotFoundError:
            return None

    def insert(self, job: BulkJob) -> tuple[BulkJob, bool]:
        after_write = self._before_write(job)
        try:
            metadata = self._table.create_entity(job.to_entity())
        except ResourceExistsError:
            existing = self.get(job.job)
            if existing is None:
                return self.insert(job)
            return existing, False
        job.etag = metadata.get("etag")
        if after_write is not None:
            after_write()
        return job, True

    def mutate(self, job_id: str, change: Callable[[BulkJob], bool], attempts: int = 12) -> BulkJob | None:
        """ETag-guarded read-modify-write; `change` returns True when there is something to write."""
        for _ in range(attempts):
            job = self.get(job_id)
            if job is None or not change(job):
                return job
            job.updated_at = utcnow()
            after_write = self._before_write(job)
            try:
                metadata = self._table.update_entity(job.to_entity(), mode=UpdateMode.REPLACE, etag=job.etag,
                                                     match_condition=MatchConditions.IfNotModified)
            except HttpResponseError as error:
                if error.status_code != 412:
                    raise
                continue
            job.etag = metadata.get("etag")
            if after_write is not None:
                after_write()
            return job
        raise RuntimeError(f"bulk send {job_id} kept changing under {attempts} attempts")

    # ---- rows ---------------------------------------------------------------------------------

    def get_row(self, job: str, row_key: str) -> tuple[BulkRow, str] | None:
        """The row and its ETag."""
        try:
            entity = self._table.get_entity(job, row_key)
        except ResourceNotFoundError:
            return None
        return BulkRow.from_entity(entity), str(entity.metadata["etag"])

    def claim_row(self, job: str, row: BulkRow) -> bool:
        """Insert a good row; False when its key is taken already."""
        try:
            self._table.create_entity(self._row_entity(job, row))
        except ResourceExistsError:
            return False
        return True

    def update_row(self, job: str, row: BulkRow, etag: str) -> bool:
        """Replace a row if it is unchanged since read; False when somebody wrote it meanwhile."""
        try:
            self._table.update_entity(self._row_entity(job, row), mode=UpdateMode.MERGE, etag=etag,
                                      match_condition=MatchConditions.IfNotModified)
        except HttpResponseError as error:
            if error.status_code != 412:
                raise
            return False
        return True

    def put_skipped(self, job: str, row: BulkRow) -> None:
        self._table.upsert_entity(self._row_entity(job, row), mode=UpdateMode.REPLACE)

    def set_status(self, job: str, row_key: str, status: str, reason: str | None,
                   archive_path: str | None) -> None:
        entity: dict[str, Any] = {"PartitionKey": job, "RowKey": row_key, "Status": status}
        if reason:
            entity["Reason"] = reason[:1000]
        if archive_path:
            entity["ArchivePath"] = archive_path
        self._table.upsert_entity(entity, mode=UpdateMode.MERGE)

    def rows(self, job: str, statuses: tuple[str, ...] = ()) -> Iterator[BulkRow]:
        """Every row of the job (good ones first, by key hash; then skipped ones by pass and line)."""
        if len(statuses) > len(_STATUS_FILTERS) - 1:
            raise ValueError(f"at most {len(_STATUS_FILTERS) - 1} statuses at once")
        parameters: dict[str, Any] = {"job": job, "after": GOOD_PREFIX[:-1]}
        parameters.update(zip(_STATUS_PARAMETERS, statuses, strict=False))
        query = _STATUS_FILTERS[len(statuses)]
        for entity in self._table.query_entities(query, parameters=parameters, results_per_page=1000):
            if entity["RowKey"] != JOB_ROW:
                yield BulkRow.from_entity(entity)

    def delete(self, job: str) -> None:
        for entity in self._table.query_entities("PartitionKey eq @job", parameters={"job": job},
                                                 select=["PartitionKey", "RowKey"]):
            self._table.delete_entity(job, entity["RowKey"])

    @staticmethod
    def _row_entity(job: str, row: BulkRow) -> dict[str, Any]:
        entity: dict[str, Any] = {"PartitionKey": job, "RowKey": row.row_key, "Key": row.key[:1000],
                                  "Line": row.line, "Generation": row.generation, "Status": row.status}
        for name, value in (("PackageRef", row.package_ref), ("Code", row.code), ("Reason", row.reason),
                            ("ArchivePath", row.archive_path)):
            if value is not None:
                entity[name] = value[:1000]
        return entity


def archive_path(location: str | None) -> str | None:
    """`signed-documents/{yyyy}/{mm}/{packageRef}/` from the archive's URL, for people reading the report."""
    if not location:
        return None
    marker = f"/{SIGNED_CONTAINER}/"
    index = location.find(marker)
    return location[index + 1:] if index >= 0 else location


class BulkRowHook:
    """Keeps a bulk row's status in step with its package row (a `PackageRepository` write hook)."""

    def __init__(self, repository: Callable[[], BulkSendRepository]) -> None:
        self._repository = repository

    def before_write(self, record: PackageRecord) -> Callable[[], None] | None:
        if not record.bulk_job or not record.bulk_row or record.bulk_row_status == record.status.value:
            return None
        record.bulk_row_status = record.status.value
        job, row_key, status = record.bulk_job, record.bulk_row, record.status.value
        reason = record.final_reason if record.status is not PackageStatus.ARCHIVED else None
        archive = archive_path(record.archive_location) if record.status is PackageStatus.ARCHIVED else None

        def after_write() -> None:
            self._repository().set_status(job, row_key, status, reason, archive)

        return after_write
