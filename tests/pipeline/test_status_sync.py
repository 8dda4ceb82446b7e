"""apply_status against Azurite: forward-only merges, per-signer state, history, reasons, archive requests."""

from __future__ import annotations

from typing import Any

import pytest

from shared.connective.models import PackageInfo
from shared.pipeline.status_sync import apply_status
from shared.storage import names
from shared.storage.status import PackageStatus
from shared.storage.store import Store
from tests.pipeline.callback_world import insert_row, new_ref, queued, store_for


@pytest.fixture()
def store(storage_connection_string: str) -> Store:
    return store_for(storage_connection_string)


def status(package_status: str, *actors: dict[str, Any], expiry: str | None = None) -> PackageInfo:
    return PackageInfo.model_validate({
        "PackageStatus": package_status, "ExpiryTimestamp": expiry,
        "PackageDocuments": [{"DocumentId": "doc-1", "DocumentName": "contract", "DocumentType": "application/pdf"}],
        "Stakeholders": [{"EmailAddress": actor.pop("email"), "StakeholderId": f"sh-{n}", "Actors": [actor]}
                         for n, actor in enumerate(actors)],
    })


def actor(actor_id: str, state: str, email: str, **extra: Any) -> dict[str, Any]:
    return {"ActorId": actor_id, "Type": "Signer", "ActorStatus": state, "email": email, **extra}


def kinds(store: Store, ref: str) -> list[str]:
    return [event["kind"] for event in store.events.history(ref)]


def test_finished_moves_the_row_records_signers_and_requests_one_archive(store: Store) -> None:
    ref = new_ref()
    insert_row(store, ref, "pkg-1", signers=[{"email": "ann@example.com", "name": "Ann", "type": "Signer"}])

    result = apply_status(store, ref, status("Finished", actor("a-1", "Finished", "ann@example.com",
                                                                CompletedTimestamp="2030-01-02T03:04:05Z")),
                          source="test")

    assert result.status_changed and result.archive_requested and result.previous_status is PackageStatus.PENDING
    row = store.packages.get(ref)
    assert row is not None and row.status is PackageStatus.FINISHED and row.connective_status == "Finished"
    assert len(row.signers) == 1  # the intake entry was matched by e-mail, not duplicated
    signer = row.signers[0]
    assert signer["name"] == "Ann" and signer["actor_id"] == "a-1" and signer["status"] == "Finished"
    assert signer["completed_at"].startswith("2030-01-02T03:04:05")
    assert row.documents[0]["document_id"] == "doc-1" and row.archive_requested_at is not None
    assert kinds(store, ref).count("status_changed") == 1 and "signer_status_changed" in kinds(store, ref)
    assert queued(store, names.ARCHIVE_REQUESTS_QUEUE, ref) == [{"packageRef": ref, "reason": "test"}]

    # The same answer again, and an older one, change nothing and ask for no second archive.
    again = apply_status(store, ref, status("Finished", actor("a-1", "Finished", "ann@example.com")), source="test")
    stale = apply_status(store, ref, status("Pending", actor("a-1", "Available", "ann@example.com")), source="test")
    assert not again.status_changed and not stale.status_changed and not stale.signer_changes
    row = store.packages.get(ref)
    assert row is not None and row.status is PackageStatus.FINISHED and row.signers[0]["status"] == "Finished"
    assert kinds(store, ref).count("status_changed") == 1
    assert queued(store, names.ARCHIVE_REQUESTS_QUEUE, ref) == []


def test_rejection_records_the_rejecting_signers_reason(store: Store) -> None:
    ref = new_ref()
    insert_row(store, ref, "pkg-2")
    apply_status(store, ref, status("Rejected", actor("a-1", "Finished", "ann@example.com"),
                                    actor("a-2", "Rejected", "bob@example.com", Reason="Wrong amount",
                                          CompletedBy="Bob")), source="test")
    row = store.packages.get(ref)
    assert row is not None and row.status is PackageStatus.REJECTED
    assert row.final_reason == "Rejected by Bob: Wrong amount"
    assert {s["email"]: s["status"] for s in row.signers} == {"ann@example.com": "Finished",
                                                              "bob@example.com": "Rejected"}


def test_expired_records_its_reason_and_an_extension_clears_it(store: Store) -> None:
    ref = new_ref()
    insert_row(store, ref, "pkg-3")
    apply_status(store, ref, status("Expired", actor("a-1", "Available", "ann@example.com"),
                                    expiry="2030-01-01T00:00:00Z"), source="test")
    row = store.packages.get(ref)
    assert row is not None and row.status is PackageStatus.EXPIRED
    assert row.final_reason == "Expired at 2030-01-01T00:00:00+00:00"

    apply_status(store, ref, status("Pending", actor("a-1", "Available", "ann@example.com"),
                                    expiry="2030-01-08T00:00:00Z"), source="test")
    # A read taken before the extension arrives late: the expiry stays at the later value.
    apply_status(store, ref, status("Pending", actor("a-1", "Available", "ann@example.com"),
                                    expiry="2030-01-01T00:00:00Z"), source="test")
    row = store.packages.get(ref)
    assert row is not None and row.status is PackageStatus.PENDING and row.final_reason is None
    assert row.expiry_timestamp is not None and row.expiry_timestamp.day == 8


def test_a_missing_row_is_reported_not_created(store: Store) -> None:
    result = apply_status(store, new_ref(), status("Finished"), source="test")
    assert not result.found and not result.archive_requested
