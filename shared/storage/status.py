"""Package statuses as we track them, and the rule that they never move backwards."""

from __future__ import annotations

from enum import StrEnum


class PackageStatus(StrEnum):
    RECEIVED = "Received"  # input accepted, package not yet created at Connective
    CREATING = "Creating"  # creation under way; a retry must look the package up first
    PENDING = "Pending"  # out for signing
    EXPIRED = "Expired"  # expiry passed; an extension brings it back to Pending
    FINISHED = "Finished"
    REJECTED = "Rejected"
    REVOKED = "Revoked"
    FAILED = "Failed"
    ARCHIVED = "Archived"  # Finished, and its documents and proofs are in signed-documents/
    INPUT_REJECTED = "InputRejected"  # bad input; an error report says why

    @classmethod
    def from_connective(cls, value: str) -> PackageStatus:
        """Map a Connective PackageStatus (compared case-insensitively) to ours."""
        wanted = value.strip().lower()
        for status in (cls.PENDING, cls.EXPIRED, cls.FINISHED, cls.REJECTED, cls.REVOKED, cls.FAILED):
            if status.value.lower() == wanted:
                return status
        if wanted == "draft":
            return cls.CREATING
        raise ValueError(f"unknown Connective package status {value!r}")


_RANK = {
    PackageStatus.RECEIVED: 0,
    PackageStatus.CREATING: 1,
    PackageStatus.PENDING: 2,
    PackageStatus.EXPIRED: 3,
    PackageStatus.FINISHED: 4,
    PackageStatus.REJECTED: 4,
    PackageStatus.REVOKED: 4,
    PackageStatus.FAILED: 4,
    PackageStatus.ARCHIVED: 5,
    PackageStatus.INPUT_REJECTED: 5,
}

FINAL_STATUSES = frozenset(s for s, rank in _RANK.items() if rank >= 4)
CONNECTIVE_FINAL = frozenset({PackageStatus.FINISHED, PackageStatus.REJECTED, PackageStatus.REVOKED,
                              PackageStatus.FAILED})
# A row in these statuses has no package at Connective yet, or only a Draft one still being built.
UNCREATED = frozenset({PackageStatus.RECEIVED, PackageStatus.CREATING})


def can_move(current: PackageStatus, new: PackageStatus) -> bool:
    """True when a row in `current` may take `new`.

    Statuses only move forward. The one way back is Expired → Pending, which only an expiry
    extension causes; a late callback that still says Pending after Finished changes nothing.
    """
    if current == new:
        return False
    if current == PackageStatus.EXPIRED and new == PackageStatus.PENDING:
        return True
    return _RANK[new] > _RANK[current]
