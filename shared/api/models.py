"""Request and response models of the HTTP API.

The handlers validate with these models and the OpenAPI definition is generated from them, so the
two cannot disagree. Every field has a title (shown as the label in a flow designer,
`x-ms-summary`) and a description. Request models reject unknown fields. Responses leave out
empty (null) fields, because flow designers treat a null where the schema says "string" as an error.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from shared.storage.packages import PackageRecord
from shared.storage.status import PackageStatus
from shared.webhooks.events import EventType


class ApiModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, serialize_by_alias=True)

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class RequestModel(ApiModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


# ---- packages ------------------------------------------------------------------------------------

class AcceptedPackage(ApiModel):
    """The answer to a package request: accepted, being created."""

    model_config = ConfigDict(title="Accepted Package")

    package_ref: str = Field(title="Package Reference", description="Our reference of the package; use it in every "
                                                                     "other call about this package.")
    status: PackageStatus = Field(title="Package Status", description="The package's status now (Received at first).")
    status_url: str = Field(title="Status URL", description="Where to read the package's status.")


class SignerState(ApiModel):
    """One signer's state, from the last status read."""

    model_config = ConfigDict(title="Signer")

    email: str | None = Field(default=None, title="Signer E-mail", description="The signer's e-mail address.")
    type: str | None = Field(default=None, title="Actor Type",
                             description="Signer or Receiver (a receiver gets the signed documents).")
    status: str | None = Field(default=None, title="Signer Status",
                               description="The signer's status at Connective (Available, Finished, Rejected, ...).")
    completed_at: str | None = Field(default=None, title="Completed At",
                                     description="When the signer signed or rejected (ISO 8601).")
    reason: str | None = Field(default=None, title="Reason", description="The signer's reason, for a rejection.")
    external_reference: str | None = Field(default=None, title="External Reference",
                                           description="Your reference of the signer, as sent.")


class PackageResource(ApiModel):
    """A package as tracked by this app (read from our status table, not from Connective)."""

    model_config = ConfigDict(title="Package")

    package_ref: str = Field(title="Package Reference", description="Our reference of the package.")
    status: PackageStatus = Field(title="Package Status", description="Received, Creating, Pending, Expired, Finished, "
                                                              "Rejected, Revoked, Failed, Archived or InputRejected.")
    is_final: bool = Field(title="Is Final", description="True once the status can no longer change by signing.")
    name: str | None = Field(default=None, title="Package Name", description="The package name from the request.")
    source: str = Field(title="Source", description="How the package arrived: api, inbox or batch.")
    external_reference: str | None = Field(default=None, title="External Reference",
                                           description="Your reference from the request.")
    connective_package_id: str | None = Field(default=None, title="Connective Package ID",
                                              description="The package's id at Connective, once created.")
    created_at: datetime = Field(title="Created At", description="When the request was received (UTC).")
    updated_at: datetime = Field(title="Updated At", description="When the row last changed (UTC).")
    expiry_timestamp: datetime | None = Field(default=None, title="Expires At",
                                              description="When the package expires at Connective (UTC).")
    reminder_count: int = Field(title="Reminders Sent", description="Reminders sent so far.")
    last_reminder_at: datetime | None = Field(default=None, title="Last Reminder At",
                                              description="When the last reminder was sent (UTC).")
    extension_count: int = Field(title="Extensions", description="How often the expiry was extended.")
    archived_at: datetime | None = Field(default=None, title="Archived At",
                                         description="When the signed documents were archived (UTC).")
    archive_location: str | None = Field(default=None, title="Archive Location",
                                         description="The container and folder of the archived files.")
    final_reason: str | None = Field(default=None, title="Final Reason",
                                     description="Why the package ended: rejection reason, revocation, failure.")
    last_error: str | None = Field(default=None, title="Last Error", description="The last processing error.")
    error_report: str | None = Field(default=None, title="Error Report",
                                     description="For InputRejected: the blob with the error report.")
    deleted_at: datetime | None = Field(default=None, title="Deleted At",
                                        description="When the package was deleted at Connective (UTC).")
    signers: list[SignerState] = Field(default_factory=list, title="Signers",
                                       description="Each signer's state from the last status read.")

    @classmethod
    def from_record(cls, record: PackageRecord) -> PackageResource:
        from shared.storage.status import FINAL_STATUSES

        return cls(
            package_ref=record.ref, status=record.status, is_final=record.status in FINAL_STATUSES,
            name=record.spec.get("name"), source=record.source,
            external_reference=record.spec.get("externalReference"),
            connective_package_id=record.connective_package_id, created_at=record.created_at,
            updated_at=record.updated_at, expiry_timestamp=record.expiry_timestamp,
            reminder_count=record.reminder_count, last_reminder_at=record.last_reminder_at,
            extension_count=record.extension_count, archived_at=record.archived_at,
            archive_location=record.archive_location, final_reason=record.final_reason,
            last_error=record.last_error, error_report=record.error_report,
            deleted_at=record.connective_deleted_at,
            signers=[SignerState.model_validate({key: entry.get(key) for key in (
                "email", "type", "status", "completed_at", "reason", "external_reference")})
                for entry in record.signers],
        )


class PackagePage(ApiModel):
    """One page of packages."""

    model_config = ConfigDict(title="Package Page")

    value: list[PackageResource] = Field(title="Packages", description="The packages on this page.")
    continuation_token: str | None = Field(default=None, title="Continuation Token",
                                           description="Pass it as continuationToken for the next page; "
                                                       "absent on the last page.")
    next_link: str | None = Field(default=None, title="Next Page Link",
                                  description="The URL of the next page; absent on the last page.")


class DocumentLink(ApiModel):
    """A time-limited link to one archived file."""

    model_config = ConfigDict(title="Document Link")

    name: str = Field(title="File Name", description="The archived file's name.")
    kind: str = Field(title="Kind", description="signed-document, audit-proof, document-audit-proof or summary.")
    url: str = Field(title="Download URL", description="A read-only link to the file; it stops working at expiresAt.")
    content_type: str | None = Field(default=None, title="Content Type", description="The file's media type.")


class DocumentLinks(ApiModel):
    """Time-limited links to a package's archived files."""

    model_config = ConfigDict(title="Document Links")

    package_ref: str = Field(title="Package Reference", description="The package the files belong to.")
    expires_at: datetime = Field(title="Links Expire At", description="When the links stop working (UTC).")
    documents: list[DocumentLink] = Field(title="Documents", description="One link per archived file.")


class ExtendRequest(RequestModel):
    """A new expiry: a number of days from the current expiry (or from now), or a date-time."""

    model_config = ConfigDict(title="New Expiry")

    days: int | None = Field(default=None, ge=1, le=366, title="Days",
                             description="Days to add to the current expiry (or to now, when it has passed).")
    expiry_timestamp: datetime | None = Field(default=None, title="New Expiry",
                                              description="The new expiry, ISO 8601 with a time zone.")

    @model_validator(mode="after")
    def _one_of(self) -> ExtendRequest:
        if (self.days is None) == (self.expiry_timestamp is None):
            raise ValueError("give exactly one of days and expiryTimestamp")
        if self.expiry_timestamp is not None and self.expiry_timestamp.tzinfo is None:
            raise ValueError("expiryTimestamp needs a time zone, e.g. 2030-01-31T17:00:00Z")
        return self


# ---- subscriptions -------------------------------------------------------------------------------

_URL_DESCRIPTION = "The https URL that receives the events (Power Automate fills it in for triggers)."


class SubscriptionRequest(RequestModel):
    """Subscribe a URL to package events."""

    model_config = ConfigDict(title="Subscription Request")

    url: str = Field(min_length=8, max_length=2048, title="Callback URL", description=_URL_DESCRIPTION,
                     json_schema_extra={"x-ms-notification-url": True, "x-ms-visibility": "internal"})
    events: list[EventType] = Field(min_length=1, max_length=len(EventType), title="Events",
                                    description="The event types to receive.")
    package_ref: str | None = Field(default=None, max_length=100, title="Package Reference",
                                    description="Only events of this package; default: every package.")
    statuses: list[PackageStatus] | None = Field(default=None, max_length=len(PackageStatus), title="Statuses",
                                                 description="For package.status_changed: only these new statuses.")


class TriggerSubscriptionRequest(RequestModel):
    """Subscribe a flow trigger: the events are fixed by the trigger."""

    model_config = ConfigDict(title="Trigger Subscription")

    url: str = Field(min_length=8, max_length=2048, title="Callback URL", description=_URL_DESCRIPTION,
                     json_schema_extra={"x-ms-notification-url": True, "x-ms-visibility": "internal"})
    package_ref: str | None = Field(default=None, max_length=100, title="Package Reference",
                                    description="Only events of this package; default: every package.")


class UnsubscribeRequest(RequestModel):
    """Remove the subscriptions that deliver to a URL."""

    model_config = ConfigDict(title="Unsubscribe Request")

    url: str = Field(min_length=8, max_length=2048, title="Callback URL",
                     description="The URL given when subscribing; every subscription to it is removed.")


class SubscriptionResource(ApiModel):
    """A subscription to package events."""

    model_config = ConfigDict(title="Subscription")

    id: str = Field(title="Subscription ID", description="Use it to delete the subscription.")
    events: list[EventType] = Field(title="Events", description="The event types delivered.")
    package_ref: str | None = Field(default=None, title="Package Reference",
                                    description="Only events of this package, when set.")
    statuses: list[str] | None = Field(default=None, title="Statuses",
                                       description="For status changes: only these new statuses, when set.")
    created_at: datetime = Field(title="Created At", description="When the subscription was made (UTC).")


# ---- system --------------------------------------------------------------------------------------

class Health(ApiModel):
    """Whether the app can reach its storage."""

    model_config = ConfigDict(title="Health")

    status: str = Field(title="Health Status", description="ok when the app can reach its storage, else degraded.")
    storage: str = Field(title="Storage Status", description="ok, or the kind of storage error.")
