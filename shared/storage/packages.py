"""The `SigningPackages` table: one row per package, keyed by our own packageRef.

Every change goes through `PackageRepository.mutate`, an ETag-guarded read-modify-write loop, so
concurrent callbacks, timers and workers never overwrite each other's changes, and the status
rules in `shared.storage.status` hold whatever order events arrive in.
"""

from __future__ import annotations

import json
import random
import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode
from pydantic import BaseModel, ConfigDict, Field

from shared.storage.status import PackageStatus
from shared.telemetry import package_transitions

ROW_KEY = "package"
# packageRefs are used as PartitionKeys, in URLs and in blob paths: keep them to a safe alphabet.
PACKAGE_REF_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{2,99}$")
_JSON_FIELDS = ("spec", "signers", "reminder_policy", "archived_files", "subscribers", "documents")
# Table storage holds at most 32K UTF-16 code units in one string property and 1 MiB in one entity. A JSON
# field longer than one property (a spec with 50 signers' long names, the file list of 30 long-named
# documents) continues in `<Name>Json1`, `<Name>Json2`, ...; a character takes at most 2 code units.
JSON_PART_CHARS = 16_000
MAX_ROW_BYTES = 900 * 1024  # below the entity limit, with room for the fixed properties


class RecordTooLarge(ValueError):
    """The row would exceed what one Table entity holds."""


def utcnow() -> datetime:
    return datetime.now(UTC)


def same_instant(stored: datetime | None, held: datetime | None) -> bool:
    """A lease's stored end time is the one its holder wrote (Table storage keeps microseconds): the end
    time identifies the holder."""
    return stored is not None and held is not None and abs(stored - held) < timedelta(milliseconds=1)


def is_valid_package_ref(ref: str) -> bool:
    return bool(PACKAGE_REF_PATTERN.match(ref))


class PackageRecord(BaseModel):
    """One package as we track it. Attribute names are snake_case; table properties PascalCase."""

    model_config = ConfigDict(extra="ignore", validate_assignment=False)

    ref: str
    status: PackageStatus = PackageStatus.RECEIVED
    source: str = ""  # inbox | batch | api
    source_uri: str = ""  # container/blob of the input, for error reports and audits
    spec: dict[str, Any] = Field(default_factory=dict)  # the validated package request (manifest shape)
    request_hash: str | None = None  # HTTP API: hash of the request body, compared when its key is used again
    connective_package_id: str | None = None
    connective_status: str | None = None
    signers: list[dict[str, Any]] = Field(default_factory=list)  # per-signer state from the last status read
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    pending_since: datetime | None = None
    last_callback_at: datetime | None = None
    last_status_read_at: datetime | None = None
    callback_count: int = 0
    reminder_policy: dict[str, Any] = Field(default_factory=dict)
    reminder_count: int = 0
    last_reminder_at: datetime | None = None
    expiry_timestamp: datetime | None = None
    extension_count: int = 0
    archive_location: str | None = None
    archived_files: list[dict[str, Any]] = Field(default_factory=list)
    archived_at: datetime | None = None
    final_reason: str | None = None  # rejection reason, revocation, failure text
    last_error: str | None = None
    error_report: str | None = None  # signing-errors/ blob of an InputRejected input
    creation_lease_until: datetime | None = None  # a creation attempt owns the row until then
    subscribers: list[str] = Field(default_factory=list)
    # Connective's documents (id, name, type) from the last status read; the archive names its files by them.
    documents: list[dict[str, Any]] = Field(default_factory=list)
    status_refresh_due_at: datetime | None = None  # a deferred status read is queued for this time
    # A status read is in flight until then: its reader's lease (shared.pipeline.callbacks), released when
    # its answer is applied. A callback or refresh arriving meanwhile joins the queued read instead.
    status_read_until: datetime | None = None
    archive_requested_at: datetime | None = None  # an archive-requests message was sent
    archive_attempts: int = 0  # archive runs that found the package not ready (409) or failed
    connective_deleted_at: datetime | None = None  # deleted at Connective after archiving
    # W3C traceparent of the step that accepted the package: callbacks and the timer continue its trace.
    trace_parent: str | None = None
    creation_resends: int = 0  # creation requests the timer sent again for this row while it was stuck
    archive_resends: int = 0  # archive requests the timer sent again for this row while it sat in Finished
    # Due time held by this package's PackageSchedule row of each kind (shared.storage.schedule); never later
    # than the work is really due. None: no row of that kind.
    index_reminder_at: datetime | None = None
    index_expiry_at: datetime | None = None
    index_reconcile_at: datetime | None = None
    index_recreate_at: datetime | None = None
    index_archive_at: datetime | None = None
    # A package of a bulk send: the job, the job's row entity (BulkSends) and the status that entity last got
    # from this row (shared.bulk.rows keeps it in step on every write).
    bulk_job: str | None = None
    bulk_row: str | None = None
    bulk_row_status: str | None = None
    etag: str | None = Field(default=None, exclude=True)

    def to_entity(self) -> dict[str, Any]:
        entity: dict[str, Any] = {"PartitionKey": self.ref, "RowKey": ROW_KEY}
        for name, value in self.model_dump(exclude={"ref", "etag"}).items():
            key = _pascal(name)
            if name in _JSON_FIELDS:
                text = json.dumps(value, separators=(",", ":"), default=str)
                for index, start in enumerate(range(0, max(len(text), 1), JSON_PART_CHARS)):
                    entity[f"{key}Json{index or ''}"] = text[start:start + JSON_PART_CHARS]
            elif isinstance(value, PackageStatus):
                entity[key] = value.value
            elif value is not None:
                entity[key] = value
        size = sum(_stored_bytes(value) for value in entity.values())
        if size > MAX_ROW_BYTES:
            raise RecordTooLarge(f"package {self.ref} would need {size // 1024} KB in its table row; "
                                 f"the limit is {MAX_ROW_BYTES // 1024} KB")
        return entity

    @classmethod
    def from_entity(cls, entity: dict[str, Any]) -> PackageRecord:
        data: dict[str, Any] = {"ref": entity["PartitionKey"]}
        for name in cls.model_fields:
            if name in ("ref", "etag"):
                continue
            key = _pascal(name)
            if name in _JSON_FIELDS:
                raw = "".join(_json_parts(entity, key + "Json"))
                if raw:
                    data[name] = json.loads(raw)
            elif key in entity and entity[key] is not None:
                data[name] = entity[key]
        record = cls.model_validate(data)
        record.etag = entity.metadata.get("etag") if hasattr(entity, "metadata") else None
        return record


def _json_parts(entity: dict[str, Any], name: str) -> Iterator[str]:
    """`Name`, `Name1`, `Name2`, ... until one is missing (an entity has no gaps: every write replaces it)."""
    index = 0
    while (part := entity.get(f"{name}{index or ''}")) is not None:
        yield part
        index += 1


def _stored_bytes(value: Any) -> int:
    """About what a property costs in the entity: strings are stored as UTF-16, other values take 8 bytes."""
    return len(value.encode("utf-16-le")) + 8 if isinstance(value, str) else 16


def _pascal(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


class ConcurrentUpdateError(RuntimeError):
    """The row changed under us more times than the retry loop allows."""


class WriteHook(Protocol):
    def before_write(self, record: PackageRecord) -> Callable[[], None] | None:
        """Called before every insert and replace; may edit `record`. The callable it returns runs after a
        successful write."""
        ...


class PackageRepository:
    def __init__(self, table: TableClient, hook: WriteHook | None = None) -> None:
        self._table = table
        # Every row write passes through here, so the hook (the PackageSchedule index) cannot be forgotten.
        self._hook = hook

    def _before_write(self, record: PackageRecord) -> Callable[[], None] | None:
        return self._hook.before_write(record) if self._hook is not None else None

    def get(self, ref: str) -> PackageRecord | None:
        try:
            return PackageRecord.from_entity(self._table.get_entity(ref, ROW_KEY))
        except ResourceNotFoundError:
            return None

    def insert(self, record: PackageRecord) -> tuple[PackageRecord, bool]:
        """Insert a new row. Returns (row, created); an existing row is returned as it is."""
        after_write = self._before_write(record)
        try:
            metadata = self._table.create_entity(record.to_entity())
            record.etag = metadata.get("etag")
            if after_write is not None:
                after_write()
            package_transitions.add(1, {"status": record.status.value})
            return record, True
        except ResourceExistsError:
            existing = self.get(record.ref)
            if existing is None:  # deleted between the two calls: try once more
                return self.insert(record)
            return existing, False

    def replace(self, record: PackageRecord) -> PackageRecord:
        """Write the row if nobody changed it since it was read (its ETag)."""
        record.updated_at = utcnow()
        after_write = self._before_write(record)
        metadata = self._table.update_entity(
            record.to_entity(), mode=UpdateMode.REPLACE, etag=record.etag,
            match_condition=MatchConditions.IfNotModified,
        )
        record.etag = metadata.get("etag")
        if after_write is not None:
            after_write()
        return record

    def mutate(self, ref: str, change: Callable[[PackageRecord], bool], attempts: int = 12, *,
               current: PackageRecord | None = None) -> PackageRecord | None:
        """Apply `change` to the current row and write it, retrying on concurrent updates.

        `change` edits the record in place and returns True when there is something to write.
        Returns the row as stored (None when there is no row). `current`, a row the caller has just
        read, saves the first read: its ETag still guards the write, and a row changed since is read again.
        """
        for attempt in range(attempts):
            record = current.model_copy(deep=True) if attempt == 0 and current is not None else self.get(ref)
            if record is None:
                return None
            before = record.status
            if not change(record):
                return record
            try:
                stored = self.replace(record)
                if stored.status is not before:
                    package_transitions.add(1, {"status": stored.status.value})
                return stored
            except HttpResponseError as error:
                if error.status_code != 412:
                    raise
            # Writers that collided would collide again in lock step: a random pause spreads them out.
            time.sleep(random.uniform(0, min(0.5, 0.01 * 2**attempt)))
        raise ConcurrentUpdateError(f"package {ref} kept changing under {attempts} attempts")

    def query(self, filter_expression: str, parameters: dict[str, Any] | None = None,
              page_size: int = 100) -> Iterator[PackageRecord]:
        """Rows matching an OData filter. Values always travel as parameters, never by formatting."""
        for entity in self._table.query_entities(
            filter_expression, parameters=parameters or {}, results_per_page=page_size
        ):
            yield PackageRecord.from_entity(entity)

    def delete(self, ref: str) -> None:
        self._table.delete_entity(ref, ROW_KEY)
