"""The flow triggers the connector offers: each is a subscription with fixed events.

Swagger 2.0 allows one operation per path and method, so each trigger has its own path
(`POST /subscriptions/triggers/{name}`); all of them land in the same subscription table.
A trigger delivers one event type; its outputs in the designer are that type's
`shared.webhooks.events.EVENT_DATA` model.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.storage.status import PackageStatus
from shared.webhooks.events import EventType


@dataclass(frozen=True)
class Trigger:
    name: str  # path segment
    operation_id: str
    summary: str
    description: str
    events: tuple[EventType, ...]
    statuses: tuple[PackageStatus, ...] = ()


TRIGGERS: tuple[Trigger, ...] = (
    Trigger("package-signed", "OnPackageSigned", "When a package is signed",
            "Fires when every signer has signed (the package is Finished).",
            (EventType.STATUS_CHANGED,), (PackageStatus.FINISHED,)),
    Trigger("package-archived", "OnPackageArchived", "When the signed documents are archived",
            "Fires when the signed documents and audit proofs are in the archive; get links with "
            "Get document links.", (EventType.ARCHIVED,)),
    Trigger("package-not-signed", "OnPackageNotSigned", "When a package is rejected, revoked, failed or expired",
            "Fires when a package ends (or expires) without being signed.", (EventType.STATUS_CHANGED,),
            (PackageStatus.REJECTED, PackageStatus.REVOKED, PackageStatus.FAILED, PackageStatus.EXPIRED)),
    Trigger("status-changed", "OnPackageStatusChanged", "When a package status changes",
            "Fires on every status change of a package up to its end; the archive that follows Finished "
            "fires When the signed documents are archived.", (EventType.STATUS_CHANGED,)),
    Trigger("signer-acted", "OnSignerActed", "When a signer signs or rejects",
            "Fires when one signer signs, rejects or is skipped.", (EventType.SIGNER_ACTED,)),
    Trigger("input-rejected", "OnInputRejected", "When an input is rejected",
            "Fires when an uploaded document or manifest is refused; the event names the error report.",
            (EventType.INPUT_REJECTED,)),
    Trigger("link-requested", "OnNewLinkRequested", "When a signer asks for a new link",
            "Fires when a signer's link has expired and they ask for a new one.", (EventType.LINK_REQUESTED,)),
    Trigger("bulk-send-completed", "OnBulkSendCompleted", "When a bulk send completes",
            "Fires when every package of a bulk send is final (or the send was cancelled and every package it "
            "had is final); the event holds the counts and the report's location.", (EventType.BULK_COMPLETED,)),
)

BY_NAME = {trigger.name: trigger for trigger in TRIGGERS}
