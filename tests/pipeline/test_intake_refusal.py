"""A refusal after intake (Connective answered 400/409 to a creation step) turns only a row still being created
into InputRejected; a row whose package went out for signing keeps following Connective."""

from __future__ import annotations

from typing import Any

import pytest

from shared.pipeline.errors_report import Rejection
from shared.pipeline.recording import record_rejection_of_row
from shared.storage.status import PackageStatus
from tests.pipeline.callback_world import insert_row
from tests.pipeline.intake_support import World, storage_world, unique

__all__ = ["storage_world"]

REFUSAL = Rejection("connective_rejected", "Connective answered 400: bad signing field")


def refused(world: World, status: PackageStatus, package_id: str | None, **fields: Any) -> tuple[Any, Any]:
    row = insert_row(world.store, unique("rf"), package_id, status=status, **fields)
    stored = record_rejection_of_row(world.store, row.ref, REFUSAL)
    events = [event["kind"] for event in world.store.events.history(row.ref)]
    return stored, events


@pytest.mark.parametrize(("status", "package_id", "connective_status"), [
    (PackageStatus.RECEIVED, None, None),
    (PackageStatus.CREATING, None, None),
    (PackageStatus.CREATING, "pkg-draft", "Draft"),
])
def test_a_row_still_being_created_is_refused_with_a_report(storage_world: World, status: PackageStatus,
                                                            package_id: str | None,
                                                            connective_status: str | None) -> None:
    stored, events = refused(storage_world, status, package_id, connective_status=connective_status)
    assert stored is not None and stored.status is PackageStatus.INPUT_REJECTED
    assert stored.final_reason and stored.final_reason.startswith("connective_rejected")
    assert storage_world.report(stored)["reason"]["code"] == "connective_rejected"
    assert events == ["input_rejected"]


@pytest.mark.parametrize(("status", "connective_status"), [
    (PackageStatus.PENDING, "Pending"),
    (PackageStatus.EXPIRED, "Expired"),
    (PackageStatus.FINISHED, "Finished"),
    (PackageStatus.REJECTED, "Rejected"),
    (PackageStatus.ARCHIVED, None),
    (PackageStatus.CREATING, "Pending"),  # a status read saw the package past Draft
])
def test_a_row_whose_package_went_out_is_left_as_it_is(storage_world: World, status: PackageStatus,
                                                       connective_status: str | None) -> None:
    stored, events = refused(storage_world, status, "pkg-out", connective_status=connective_status)
    assert stored is not None and stored.status is status
    assert stored.error_report is None and stored.final_reason is None
    assert storage_world.row(stored.ref).status is status
    assert events == []
