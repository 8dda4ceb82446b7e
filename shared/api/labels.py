"""What each enum value means, in the words a flow designer shows (`x-ms-enum-values`)."""

from __future__ import annotations

from shared.storage.bulk import JobState
from shared.storage.status import PackageStatus
from shared.webhooks.events import EventType

PACKAGE_STATUS = {
    PackageStatus.RECEIVED.value: "Received (not yet created at Connective)",
    PackageStatus.CREATING.value: "Creating (being created at Connective)",
    PackageStatus.PENDING.value: "Pending (out for signing)",
    PackageStatus.EXPIRED.value: "Expired (can be extended)",
    PackageStatus.FINISHED.value: "Finished (signed by everyone)",
    PackageStatus.REJECTED.value: "Rejected (a signer refused)",
    PackageStatus.REVOKED.value: "Revoked (cancelled)",
    PackageStatus.FAILED.value: "Failed (could not be created or processed)",
    PackageStatus.ARCHIVED.value: "Archived (signed files stored)",
    PackageStatus.INPUT_REJECTED.value: "Input rejected (bad documents or manifest)",
}

EVENT_TYPE = {
    EventType.STATUS_CHANGED.value: "Package status changed",
    EventType.SIGNER_ACTED.value: "Signer signed, rejected or was skipped",
    EventType.ARCHIVED.value: "Signed files archived",
    EventType.INPUT_REJECTED.value: "Input rejected",
    EventType.LINK_REQUESTED.value: "Signer asked for a new link",
    EventType.BULK_COMPLETED.value: "Bulk send completed",
}

JOB_STATE = {
    JobState.SENDING.value: "Sending (rows are being read and sent)",
    JobState.TRACKING.value: "Tracking (every row sent; waiting for the packages)",
    JobState.COMPLETED.value: "Completed (every package is final)",
    JobState.CANCELLING.value: "Cancelling (revoking what is not signed)",
    JobState.CANCELLED.value: "Cancelled (every package is final)",
    JobState.INPUT_REJECTED.value: "Input rejected (bad job or no good row)",
}

# By the enum's class name, as pydantic names it in a JSON schema.
ENUM_LABELS = {PackageStatus.__name__: PACKAGE_STATUS, EventType.__name__: EVENT_TYPE, JobState.__name__: JOB_STATE}
