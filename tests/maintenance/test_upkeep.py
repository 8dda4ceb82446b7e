"""Reminders, expiry extensions and reconciliation against Azurite and the sandbox, on the sandbox's clock."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest

from devtools.azurite import Azurite
from shared.connective import LocalRateLimiter
from shared.maintenance import work
from shared.maintenance.budget import RunBudget
from shared.maintenance.work import WorkContext, remind
from shared.pipeline.status_sync import apply_status
from shared.storage import names
from shared.storage.schedule import WorkKind
from shared.storage.status import PackageStatus
from tests.conftest import SandboxHandle
from tests.maintenance.world import World, final_row
from tests.pipeline.callback_world import act, actors


@pytest.fixture()
def world(sandbox: SandboxHandle, fresh_azurite: Azurite) -> World:
    return World(sandbox, fresh_azurite.connection_string)


def new_ref() -> str:
    return f"mt-{uuid.uuid4().hex[:12]}"


def test_reminders_come_at_the_policy_times_and_stop_at_the_maximum(world: World) -> None:
    row = world.pending_package(ref := new_ref())
    package_id = row.connective_package_id

    world.clock.advance(hours=47)
    world.run()
    assert world.reminders(package_id) == 0

    world.clock.advance(hours=1, minutes=5)  # 48 h pending: the first reminder
    report = world.run()
    assert report.outcomes["reminder:reminded"] == 1
    assert world.reminders(package_id) == 1
    first = world.row(ref)
    assert first.reminder_count == 1
    assert abs((first.last_reminder_at - world.clock()).total_seconds()) < 60

    world.run()  # the same interval: nothing more
    world.clock.advance(hours=23)
    world.run()
    assert world.reminders(package_id) == 1

    world.clock.advance(hours=1, minutes=5)  # 24 h after the first
    world.run()
    assert world.reminders(package_id) == 2
    assert world.row(ref).reminder_count == 2

    world.clock.advance(hours=72)  # the maximum (2) is reached
    world.run()
    assert world.reminders(package_id) == 2
    assert [e["count"] for e in world.events(ref, "reminder_sent")] == [1, 2]
    assert not [r for r in world.index_rows(ref) if r["Kind"] == "reminder"]


def test_a_package_policy_overrides_the_defaults_and_acted_signers_get_no_reminder(world: World) -> None:
    eager = world.pending_package(new_ref(), reminder_policy={"firstAfterHours": 1, "everyHours": 1, "maxCount": 1})
    default = world.pending_package(new_ref())
    done_signing = world.pending_package(new_ref(), reminder_policy={"firstAfterHours": 1},
                                         signers=[{"email": "a@example.com", "type": "Signer", "status": "Finished"},
                                                  {"email": "cc@example.com", "type": "Receiver", "status": "Draft"}])
    world.clock.advance(hours=3, minutes=5)
    world.run()
    assert world.reminders(eager.connective_package_id) == 1
    assert world.reminders(default.connective_package_id) == 0
    assert world.reminders(done_signing.connective_package_id) == 0
    world.clock.advance(hours=2)
    world.run()
    assert world.reminders(eager.connective_package_id) == 1  # maxCount 1


def test_expiry_is_extended_within_the_limits_then_recorded_when_it_passes(world: World) -> None:
    expiry = world.clock().replace(microsecond=0) + timedelta(hours=30)
    row = world.pending_package(ref := new_ref(), expiry=expiry)
    package_id = row.connective_package_id
    world.clock.advance(hours=5)  # 25 h before the expiry: outside the 24 h window
    world.run()
    assert world.row(ref).extension_count == 0

    world.clock.advance(hours=2)  # 23 h before: extended by 7 days
    report = world.run()
    assert report.outcomes["expiry:extended"] == 1
    first = world.row(ref)
    assert first.extension_count == 1
    assert first.expiry_timestamp == expiry + timedelta(days=7)
    assert world.sandbox_package(package_id)["expiry"].startswith(
        first.expiry_timestamp.strftime("%Y-%m-%dT%H:%M:%S"))
    world.run()
    assert world.row(ref).extension_count == 1

    world.clock.advance(days=7)  # 23 h before the new expiry: the second and last extension
    world.run()
    second = world.row(ref)
    assert second.extension_count == 2
    assert second.expiry_timestamp == expiry + timedelta(days=14)

    world.clock.advance(days=7)  # 23 h before again: no extension left
    world.run()
    assert world.row(ref).extension_count == 2
    assert world.row(ref).status == PackageStatus.PENDING

    world.clock.advance(hours=24)  # past the expiry; the sandbox sends no callback (no URL)
    world.run()
    expired = world.row(ref)
    assert expired.status == PackageStatus.EXPIRED
    assert world.sandbox_package(package_id)["status"] == "Expired"
    assert [e["status"] for e in world.events(ref, "status_changed")] == ["Expired"]
    assert [e["count"] for e in world.events(ref, "expiry_extended")] == [1, 2]


def test_a_package_whose_callbacks_were_lost_is_reconciled_and_archived(world: World) -> None:
    row = world.pending_package(ref := new_ref())
    package_id = row.connective_package_id
    for actor in actors(world.sandbox, package_id):
        act(world.sandbox, package_id, actor["id"], "sign")
    assert world.sandbox_package(package_id)["status"] == "Finished"

    world.clock.advance(hours=5)
    world.run()
    assert world.row(ref).status == PackageStatus.PENDING  # not yet 6 h without news

    world.clock.advance(hours=1, minutes=5)
    report = world.run()
    assert report.outcomes["reconcile:reconciled"] == 1
    finished = world.row(ref)
    assert finished.status == PackageStatus.FINISHED
    # Final: no upkeep left but the timer's check that the archive happens.
    assert [r["Kind"] for r in world.index_rows(ref)] == ["archive"]
    messages = world.store.clients.queue(names.ARCHIVE_REQUESTS_QUEUE).receive_messages()
    assert ref in [json.loads(m.content)["packageRef"] for m in messages]


def test_final_rows_have_no_index_rows_and_a_final_status_drops_them(world: World) -> None:
    for _ in range(20):
        final_row(world.store, new_ref())
    assert world.index_rows() == []

    row = world.pending_package(ref := new_ref())
    assert sorted(r["Kind"] for r in world.index_rows(ref)) == ["reconcile", "reminder"]
    info = world.client.get_package_status(row.connective_package_id)
    for actor in actors(world.sandbox, row.connective_package_id):
        act(world.sandbox, row.connective_package_id, actor["id"], "sign")
    info = world.client.get_package_status(row.connective_package_id)
    apply_status(world.store, ref, info, source="test")
    assert world.row(ref).status == PackageStatus.FINISHED
    assert [r["Kind"] for r in world.index_rows(ref)] == ["archive"]  # until it is archived


def test_a_callback_pushes_reconciliation_out_without_an_index_write(world: World) -> None:
    world.pending_package(ref := new_ref())
    before = world.index_rows(ref)
    world.clock.advance(hours=5)

    def callback(row):  # what a callback does to the row
        row.last_callback_at = world.clock()
        row.callback_count += 1
        return True

    world.store.packages.mutate(ref, callback)
    assert world.index_rows(ref) == before  # due later than indexed: the index is left early
    world.clock.advance(hours=1, minutes=30)  # the old row falls due early: moved, no status read
    report = world.run()
    assert report.outcomes["not-due"] == 1
    assert report.calls == report.sweep.pages  # no status read, only the sweep's page
    row = world.row(ref)
    assert row.index_reconcile_at == row.last_callback_at + timedelta(hours=6)


def test_a_stale_read_of_the_row_never_sends_a_second_reminder(world: World) -> None:
    world.pending_package(ref := new_ref())
    world.clock.advance(hours=48, minutes=5)
    seen = world.row(ref)  # both "runners" read the row before either acts
    context = WorkContext(store=world.store, client=world.client, budget=RunBudget(30, LocalRateLimiter(100, 60)),
                          policy=world.store.schedule.policy, extend_by=timedelta(days=7),
                          clock=world.clock)
    outcomes = [remind(context, seen), remind(context, seen)]
    assert [o.value for o in outcomes] == ["reminded", "not-due"]
    assert world.reminders(seen.connective_package_id) == 1


def test_work_that_fails_unexpectedly_is_released_for_a_minute_not_held_for_the_claim(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    row = world.pending_package(ref := new_ref())
    for actor in actors(world.sandbox, row.connective_package_id):
        act(world.sandbox, row.connective_package_id, actor["id"], "sign")
    world.clock.advance(hours=6, minutes=5)

    def storage_hiccup(*_: object, **__: object) -> None:
        raise ConnectionError("the table went away")

    monkeypatch.setitem(work.HANDLERS, WorkKind.RECONCILE, storage_hiccup)
    report = world.run()
    assert report.outcomes["error"] == 1
    [entry] = world.index_rows(ref, kind="reconcile")
    assert not entry.get("ClaimedBy") and entry["LastError"] == "ConnectionError"
    monkeypatch.undo()

    world.run()  # the claim would hold it for the run's time budget + 1 min; the release, 1 min
    assert world.row(ref).status == PackageStatus.PENDING
    world.clock.advance(minutes=2)
    assert world.run().outcomes["reconcile:reconciled"] == 1
    assert world.row(ref).status == PackageStatus.FINISHED
