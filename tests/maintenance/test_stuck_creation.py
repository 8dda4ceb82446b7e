"""Rows stuck before Pending whose creation request was lost get it again from the timer, and the package is
created once."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest

from devtools.azurite import Azurite
from shared.config import Settings
from shared.pipeline import creation, intake
from shared.storage import names
from shared.storage.packages import PackageRecord
from shared.storage.schedule import MAX_CREATION_RESENDS
from shared.storage.status import PackageStatus
from tests.conftest import SandboxHandle
from tests.maintenance.world import World, quiet_world, settings_with
from tests.pipeline.callback_world import insert_row
from tests.pipeline.intake_support import INITIATOR, pdf_with_markers

THRESHOLD = timedelta(minutes=30)  # STUCK_CREATION_AFTER_MIN's default


@pytest.fixture()
def world(sandbox: SandboxHandle, fresh_azurite: Azurite) -> World:
    return quiet_world(sandbox, fresh_azurite.connection_string)


def intake_settings(world: World) -> Settings:
    return settings_with(world, RECONCILE_AFTER_H="10000", DEFAULT_INITIATOR=INITIATOR)


def received_row(world: World) -> PackageRecord:
    """A PDF taken in (row Received, message sent), then its message lost, as if it went to the poison queue."""
    blob = world.store.clients.container(names.INBOX_CONTAINER).get_blob_client(f"stuck-{uuid.uuid4().hex[:8]}.pdf")
    blob.upload_blob(pdf_with_markers("#SIGN1#"), metadata={"signers": "Anna Peeters <anna@example.com>"})
    record = intake.intake_inbox_blob(world.store, intake_settings(world), blob)
    assert record is not None and record.status is PackageStatus.RECEIVED
    world.store.clients.queue(names.PACKAGE_REQUESTS_QUEUE).clear_messages()
    return record


def requested_refs(world: World) -> list[str]:
    queue = world.store.clients.queue(names.PACKAGE_REQUESTS_QUEUE)
    return [json.loads(message.content)["packageRef"] for message in queue.peek_messages(max_messages=32)]


def create_from_queue(world: World) -> list[creation.Outcome]:
    """What the package-requests trigger does, for each message waiting."""
    queue = world.store.clients.queue(names.PACKAGE_REQUESTS_QUEUE)
    outcomes = []
    for message in queue.receive_messages(max_messages=32):
        ref = json.loads(message.content)["packageRef"]
        outcomes.append(creation.create(ref, store=world.store, settings=intake_settings(world), client=world.client))
        queue.delete_message(message)
    return outcomes


def packages_at_connective(world: World, ref: str) -> list[str]:
    return [item.id for item in world.client.iter_package_list() if item.external_package_reference == ref]


def test_a_received_row_whose_message_was_lost_is_sent_again_and_created_once(world: World) -> None:
    record = received_row(world)
    [indexed] = world.index_rows(record.ref, "recreate")
    assert indexed["DueAt"] == record.updated_at + THRESHOLD

    report = world.run_across(THRESHOLD, "recreate:resent")
    assert report.outcomes["recreate:resent"] == 1 and report.calls == 0
    assert requested_refs(world) == [record.ref]
    [event] = world.events(record.ref, "creation_resent")
    assert (event["count"], event["status"]) == (1, "Received")

    assert create_from_queue(world) == [creation.Outcome.CREATED]
    row = world.row(record.ref)
    assert row.status is PackageStatus.PENDING and row.creation_resends == 1
    assert packages_at_connective(world, record.ref) == [row.connective_package_id]
    assert world.index_rows(record.ref, "recreate") == []  # the row moved on: nothing left to recover

    world.clock.advance(hours=3)
    assert world.run().outcomes["recreate:resent"] == 0
    assert requested_refs(world) == []


def test_a_creating_row_whose_create_was_answered_but_lost_is_recorded_not_created_twice(world: World) -> None:
    record = received_row(world)
    creation.create(record.ref, store=world.store, settings=intake_settings(world), client=world.client)
    created_id = world.row(record.ref).connective_package_id

    def crashed(row: PackageRecord) -> bool:  # the worker died before it recorded the answer; the lease lapsed
        row.status, row.connective_package_id = PackageStatus.CREATING, None
        row.creation_lease_until = row.updated_at
        return True

    world.store.packages.mutate(record.ref, crashed)
    world.clock.advance(minutes=31)
    assert world.run().outcomes["recreate:resent"] == 1
    assert create_from_queue(world) == [creation.Outcome.RECORDED]
    row = world.row(record.ref)
    assert (row.status, row.connective_package_id) == (PackageStatus.PENDING, created_id)
    assert packages_at_connective(world, record.ref) == [created_id]


def test_a_live_creation_attempt_is_left_alone_until_its_lease_lapses(world: World) -> None:
    now = world.clock()
    attempt = insert_row(world.store, f"mt-{uuid.uuid4().hex[:12]}", None, status=PackageStatus.CREATING,
                         creation_lease_until=now + timedelta(hours=1))
    world.clock.advance(minutes=31)
    assert world.run().outcomes["recreate:resent"] == 0
    world.clock.advance(minutes=30)
    assert world.run().outcomes["recreate:resent"] == 1
    assert requested_refs(world) == [attempt.ref]


def test_a_row_that_stays_stuck_is_sent_again_less_often_then_left_to_an_operator(world: World) -> None:
    stuck = insert_row(world.store, f"mt-{uuid.uuid4().hex[:12]}", None, status=PackageStatus.RECEIVED)
    world.clock.advance(minutes=31)
    world.run()
    row = world.row(stuck.ref)
    [indexed] = world.index_rows(stuck.ref, "recreate")
    assert row.creation_resends == 1 and indexed["DueAt"] == row.updated_at + 2 * THRESHOLD

    exhausted = insert_row(world.store, f"mt-{uuid.uuid4().hex[:12]}", None, status=PackageStatus.RECEIVED,
                           creation_resends=MAX_CREATION_RESENDS)
    assert world.index_rows(exhausted.ref, "recreate") == []
