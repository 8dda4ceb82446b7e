"""Runs: concurrent runners, the rate share, the time budget, past-due runs and the Package List sweep."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import timedelta

import pytest

from devtools.azurite import Azurite
from shared.connective import LocalRateLimiter
from shared.maintenance.budget import RunBudget
from shared.maintenance.runner import RunReport
from shared.storage import names
from shared.storage.packages import PackageRecord
from shared.storage.status import PackageStatus
from tests.conftest import SandboxHandle
from tests.maintenance.world import World
from tests.pipeline.callback_world import insert_row, pdf, stakeholder

# Reminders only: reconciliation and the sweep are pushed out of the way of the counts.
REMINDERS_ONLY = {"RECONCILE_AFTER_H": "10000", "MAINTENANCE_SWEEP_EVERY_MIN": "100000"}


@pytest.fixture()
def world(sandbox: SandboxHandle, fresh_azurite: Azurite) -> World:
    world = World(sandbox, fresh_azurite.connection_string, **REMINDERS_ONLY)
    world.skip_sweeps()
    return world


def new_ref(prefix: str = "mt") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def test_two_concurrent_runners_never_remind_a_package_twice(world: World) -> None:
    rows = [world.pending_package(new_ref()) for _ in range(16)]
    world.clock.advance(hours=48, minutes=5)
    reports: list[RunReport] = []
    start = threading.Barrier(2)

    def runner() -> None:
        start.wait()
        reports.append(world.run(owner=threading.current_thread().name))

    threads = [threading.Thread(target=runner, name=f"runner-{n}") for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert [world.reminders(row.connective_package_id) for row in rows] == [1] * 16
    assert sum(report.outcomes["reminder:reminded"] for report in reports) == 16
    assert all(world.row(row.ref).reminder_count == 1 for row in rows)


def test_the_timer_spends_only_its_share_and_the_next_run_resumes(world: World) -> None:
    rows = [world.pending_package(new_ref()) for _ in range(5)]
    world.clock.advance(hours=48, minutes=5)
    share = LocalRateLimiter(3, 60)  # 30 % of a 10-calls-per-minute connection
    first = world.run(budget=RunBudget(0.5, share))
    assert first.outcomes["reminder:reminded"] == 3
    assert first.stopped is not None
    assert sum(world.reminders(row.connective_package_id) for row in rows) == 3
    second = world.run()
    assert second.outcomes["reminder:reminded"] == 2
    assert [world.reminders(row.connective_package_id) for row in rows] == [1] * 5


def test_a_spent_time_budget_starts_no_work_and_leaves_the_rows_due(world: World) -> None:
    row = world.pending_package(new_ref())
    world.clock.advance(hours=48, minutes=5)
    report = world.run(budget=RunBudget(0, LocalRateLimiter(100, 60)))
    assert report.stopped == "time budget spent"
    assert world.reminders(row.connective_package_id) == 0
    assert world.run().outcomes["reminder:reminded"] == 1


def test_a_past_due_run_catches_up_once(world: World) -> None:
    row = world.pending_package(new_ref())
    world.clock.advance(hours=24 * 5)  # several ticks and both reminder times were missed
    report = world.run(past_due=True)
    assert report.past_due
    assert report.outcomes["reminder:reminded"] == 1
    assert world.reminders(row.connective_package_id) == 1
    assert world.run().outcomes["reminder:reminded"] == 0
    world.clock.advance(hours=24, minutes=5)
    world.run()
    assert world.reminders(row.connective_package_id) == 2


def test_rows_whose_package_is_gone_are_dropped_from_the_index(world: World) -> None:
    row = world.pending_package(ref := new_ref())
    world.store.packages.delete(ref)
    world.clock.advance(hours=48, minutes=5)
    report = world.run()
    assert report.outcomes["stale"] == 1
    assert world.index_rows(ref) == [r for r in world.index_rows(ref) if r["Kind"] == "reconcile"]
    assert world.reminders(row.connective_package_id) == 0


@pytest.fixture()
def sweeping_world(sandbox: SandboxHandle, fresh_azurite: Azurite) -> World:
    return World(sandbox, fresh_azurite.connection_string, RECONCILE_AFTER_H="10000", MAINTENANCE_SWEEP_EVERY_MIN="60")


def _create_at_connective(world: World, ref: str, *, draft: bool = False) -> str:
    if draft:
        return world.client.create_package({"Initiator": "owner@example.com", "PackageName": ref,
                                            "ExternalPackageReference": ref}).package_id
    body = {"Initiator": "owner@example.com", "DocumentName": ref, "ExternalPackageReference": ref,
            "Stakeholders": [stakeholder("signer@example.com", fields=[
                {"PageNumber": 1, "Left": "72", "Top": "600", "Width": "180", "Height": "60"}])]}
    return world.client.create_instant_package(body, pdf(ref)).package_id


def test_the_sweep_recovers_packages_whose_creation_crashed_and_reports_rows_missing(sweeping_world: World) -> None:
    world = sweeping_world
    lapsed = world.clock() - timedelta(minutes=20)
    crashed, drafted, live = new_ref("inb"), new_ref("bat"), new_ref("api")
    for ref in (crashed, drafted):
        insert_row(world.store, ref, None, status=PackageStatus.CREATING, creation_lease_until=lapsed)
    insert_row(world.store, live, None, status=PackageStatus.CREATING,
               creation_lease_until=world.clock() + timedelta(minutes=5))
    crashed_id = _create_at_connective(world, crashed)
    drafted_id = _create_at_connective(world, drafted, draft=True)
    _create_at_connective(world, live)
    orphan = f"api-{uuid.uuid4().hex[:24]}"
    orphan_id = _create_at_connective(world, orphan)
    _create_at_connective(world, "someone-elses-ref")

    report = world.run()
    assert report.sweep.completed
    assert sorted(report.sweep.recovered) == sorted([crashed, drafted])
    assert report.sweep.without_row == [orphan]

    recovered: PackageRecord = world.row(crashed)
    assert (recovered.connective_package_id, recovered.status) == (crashed_id, PackageStatus.PENDING)
    assert world.events(crashed, "recovered_by_sweep")
    draft_row = world.row(drafted)
    assert (draft_row.connective_package_id, draft_row.status) == (drafted_id, PackageStatus.CREATING)
    messages = world.store.clients.queue(names.PACKAGE_REQUESTS_QUEUE).receive_messages()
    assert [json.loads(m.content)["packageRef"] for m in messages] == [drafted]
    assert world.row(live).connective_package_id is None  # its creation is still under way
    assert world.events(orphan, "created_without_row")[0]["package_id"] == orphan_id

    again = world.run()  # within MAINTENANCE_SWEEP_EVERY_MIN: no sweep, no call
    assert not again.sweep.ran
    assert again.calls == 0


def test_a_sweep_cut_short_resumes_from_its_continuation_token(sweeping_world: World) -> None:
    world = sweeping_world
    refs = [new_ref("inb") for _ in range(3)]
    for ref in refs:
        insert_row(world.store, ref, None, status=PackageStatus.RECEIVED)
        _create_at_connective(world, ref)
    # Pages of one package; the share allows two calls: one page and one status read.
    from shared.maintenance import sweep

    page_size, sweep.PAGE_SIZE = sweep.PAGE_SIZE, 1
    try:
        first = world.run(budget=RunBudget(0.3, LocalRateLimiter(2, 60)))
        assert first.stopped is not None and not first.sweep.completed
        assert sum(world.row(ref).connective_package_id is not None for ref in refs) == 1
        state = {row["RowKey"]: row for row in world.checkpoint_rows()}["package-list-sweep"]
        assert state["ContinuationToken"] and not state.get("ClaimedBy")
        world.run()
    finally:
        sweep.PAGE_SIZE = page_size
    assert all(world.row(ref).status == PackageStatus.PENDING for ref in refs)
