"""The events a subscriber can receive, and the JSON body of one delivery."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from functools import cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model
from pydantic.alias_generators import to_camel

from shared.storage.status import PackageStatus


class EventType(StrEnum):
    STATUS_CHANGED = "package.status_changed"
    SIGNER_ACTED = "package.signer_acted"
    ARCHIVED = "package.archived"
    INPUT_REJECTED = "package.input_rejected"
    LINK_REQUESTED = "package.link_requested"
    BULK_COMPLETED = "bulk_send.completed"


class WebhookEvent(BaseModel):
    """The body POSTed to a subscriber."""

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True, title="Package Event")

    id: str = Field(default_factory=lambda: uuid.uuid4().hex, title="Event ID",
                    description="Unique id of the event; the same on every retry, so receivers can drop duplicates.")
    type: EventType = Field(title="Event Type", description="What happened, for example package.status_changed.")
    occurred_at: datetime = Field(default_factory=lambda: datetime.now(UTC), alias="occurredAt",
                                  title="Occurred At", description="When the event happened (UTC, ISO 8601).")
    package_ref: str = Field(alias="packageRef", title="Package Reference",
                             description="The package the event is about.")
    data: dict[str, Any] = Field(default_factory=dict, title="Event Data",
                                 description="Event details; what they hold depends on the type (EVENT_DATA below).")

    def body(self) -> bytes:
        return self.model_dump_json(by_alias=True).encode("utf-8")


# ---- what `data` holds, per event type ---------------------------------------------------------
# The publishers send these fields (shared/pipeline: status_sync, archive, intake, callbacks);
# the connector's triggers describe them from these models, so each field is a token a flow can use.

class _EventData(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, serialize_by_alias=True)


class StatusChangedData(_EventData):
    """What a package.status_changed event says."""

    model_config = ConfigDict(title="Status Change")

    status: PackageStatus = Field(title="Package Status", description="The package's new status.")
    previous_status: PackageStatus | None = Field(default=None, title="Previous Status",
                                                  description="The package's status before this change.")
    reason: str | None = Field(default=None, title="Reason",
                               description="Why the package ended or expired: the signer's rejection reason, "
                                           "the revocation or the failure, when known.")


class SignerActedData(_EventData):
    """What a package.signer_acted event says."""

    model_config = ConfigDict(title="Signer Action")

    email: str | None = Field(default=None, title="Signer E-mail", description="The e-mail address of the signer "
                                                                                  "who acted.")
    actor_id: str | None = Field(default=None, title="Signer ID", description="The signer's id at Connective.")
    action: str = Field(title="Action", description="What the signer did: signed, rejected, failed or skipped.",
                        json_schema_extra={"enum": ["signed", "rejected", "failed", "skipped"]})
    completed_at: str | None = Field(default=None, title="Acted At",
                                     description="When the signer acted (ISO 8601), as Connective reports it.")
    reason: str | None = Field(default=None, title="Reason", description="The signer's reason, for a rejection.")
    status: PackageStatus = Field(title="Package Status", description="The package's status after the action.")


class ArchivedFile(_EventData):
    """One file written to the archive."""

    model_config = ConfigDict(title="Archived File")

    name: str = Field(title="File Name", description="The file's name in the archive folder.")
    blob: str = Field(title="Blob Path", description="The file's path in the signed-documents container.")
    url: str = Field(title="Blob URL", description="The file's blob URL; it needs storage credentials, so use Get "
                                                   "document links for a download link.")
    kind: str = Field(title="File Kind", description="What the file is.", json_schema_extra={
        "enum": ["signed-document", "document-audit-proof", "package-audit-proof", "summary"]})
    content_type: str = Field(title="Content Type", description="The file's media type.")
    size: int = Field(title="Size", description="The file's size in bytes.")
    sha256: str = Field(title="SHA-256", description="The SHA-256 hash of the file, in hex.")
    document_id: str | None = Field(default=None, title="Document ID",
                                    description="The Connective document the file belongs to, for per-document files.")


class ArchivedData(_EventData):
    """What a package.archived event says."""

    model_config = ConfigDict(title="Archive")

    archive_location: str = Field(title="Archive Location",
                                  description="The container and folder that hold the package's archived files.")
    files: list[ArchivedFile] = Field(title="Archived Files", description="Every file written to the archive.")


class InputRejectedData(_EventData):
    """What a package.input_rejected event says."""

    model_config = ConfigDict(title="Input Rejection")

    package_ref: str = Field(title="Package Reference", description="The reference the input was given.")
    source: str | None = Field(default=None, title="Source", description="The container and blob of the input.")
    code: str = Field(title="Error Code", description="The kind of problem, for example document_too_large.")
    message: str = Field(title="Reason", description="Why the input was refused, in plain words.")
    error_report: str | None = Field(default=None, title="Error Report",
                                     description="The blob with the full error report.")


class LinkRequestedData(_EventData):
    """What a package.link_requested event says."""

    model_config = ConfigDict(title="New Link Request")

    email: str | None = Field(default=None, title="Signer E-mail",
                              description="The e-mail address of the signer who asked for a new link.")
    actor_id: str | None = Field(default=None, title="Signer ID", description="The signer's id at Connective.")


class BulkStatusCount(_EventData):
    """How many rows of a bulk send ended in one status."""

    model_config = ConfigDict(title="Bulk Status Count")

    status: str = Field(title="Status", description="A package status, or Skipped for a bad row.")
    count: int = Field(title="Count", description="How many rows are in that status.")


class BulkCompletedData(_EventData):
    """What a bulk_send.completed event says (packageRef holds the bulk send's id)."""

    model_config = ConfigDict(title="Bulk Send Completion")

    bulk_send: str = Field(title="Bulk Send ID", description="The bulk send's id.")
    state: str = Field(title="State", description="Completed, or Cancelled for a cancelled bulk send.",
                       json_schema_extra={"enum": ["Completed", "Cancelled"]})
    packages: int = Field(title="Packages", description="Rows that got a package.")
    skipped: int = Field(title="Skipped Rows", description="Bad rows, skipped; the report says why.")
    statuses: list[BulkStatusCount] = Field(title="Status Counts", description="Rows by final status.")
    report: str = Field(title="Report", description="The report.csv blob (container/path), one line per row.")


EVENT_DATA: dict[EventType, type[BaseModel]] = {
    EventType.STATUS_CHANGED: StatusChangedData,
    EventType.SIGNER_ACTED: SignerActedData,
    EventType.ARCHIVED: ArchivedData,
    EventType.INPUT_REJECTED: InputRejectedData,
    EventType.LINK_REQUESTED: LinkRequestedData,
    EventType.BULK_COMPLETED: BulkCompletedData,
}


@cache
def typed_event(event_type: EventType) -> type[WebhookEvent]:
    """The delivery body of one event type, with `data` described field by field (for the connector)."""
    data_model = EVENT_DATA[event_type]
    name = data_model.__name__.removesuffix("Data") + "Event"
    return create_model(name, __base__=WebhookEvent, __doc__=f"A {event_type.value} event, as delivered.",
                        data=(data_model, Field(title="Details", description=data_model.__doc__ or "")))
