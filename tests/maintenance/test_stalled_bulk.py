"""A bulk send whose chain of `bulk-feed` steps broke (a step saved the job and died before it sent the next
message) is noticed by the timer, which sends the current step again, and the job runs to completion."""

from __future__ import annotations

import json
from typing import Any

import pytest

from devtools.azurite import Azurite
from shared.bulk import feeder, jobs
from shared.storage import names
from shared.storage.bulk import JobState
from shared.storage.packages import PackageRecord
from shared.storage.schedule import MAX_BULK_STEP_RESENDS
from shared.storage.status import PackageStatus
from tests.bulk.bulk_support import csv_bytes, job_blob, job_spec, new_job_id, no_client, people, upload_job
from tests.conftest import SandboxHandle
from tests.host.conftest import wait_for
from tests.maintenance.world import World

OUTCOME = "bulk-step:resent"


@pytest.fixture()
def world(sandbox: SandboxHandle, fresh_azurite: Azurite) -> World:
    world = World(sandbox, fresh_azurite.connection_string, RECONCILE_AFTER_H="10000", BULK_REPORT_INTERVAL_S="0",
                  BULK_STEP_ROWS="2", CONNECTIVE_RATE_CALLS="1000")
    world.skip_sweeps()
    return world


def feed_queue(world: World) -> Any:
    return world.store.clients.queue(names.BULK_FEED_QUEUE)


def started_job(world: World, rows: int) -> str:
    job_id = new_job_id()
    upload_job(world.store, job_id, job_spec(), csv_bytes(people(rows)))
    assert jobs.start_from_blob(world.store, world.settings, job_blob(world.store, job_id)) is not None
    return job_id


def run_next_message(world: World) -> dict[str, Any]:
    """Take the next `bulk-feed` message (waiting until one is visible) and run its step, as the trigger does."""
    queue = feed_queue(world)
    message = wait_for(lambda: next(iter(queue.receive_messages(max_messages=1)), None), timeout_s=30)
    body: dict[str, Any] = json.loads(message.content)
    feeder.run_step(world.store, world.settings, body["job"], body["step"], no_client)
    queue.delete_message(message)
    return body


def step_that_dies_before_sending(world: World, job_id: str) -> int:
    """Run the job's queued step: it saves the job at the next step; then its message is dropped. Returns
    the step the job now expects."""
    ran = run_next_message(world)["step"]
    feed_queue(world).clear_messages()
    return int(ran) + 1


def sign_and_archive_every_package(world: World, job_id: str) -> None:
    def archived(row: PackageRecord) -> bool:
        row.status = PackageStatus.ARCHIVED
        return True

    for row in world.store.bulk.rows(job_id):
        assert row.package_ref is not None
        world.store.packages.mutate(row.package_ref, archived)


def test_a_job_whose_next_step_was_lost_is_resumed_by_the_timer_and_completes(world: World) -> None:
    job_id = started_job(world, rows=3)
    step = step_that_dies_before_sending(world, job_id)  # it released 2 rows of 3 and saved the next step
    stalled = world.store.bulk.get(job_id)
    assert stalled is not None and stalled.state is JobState.SENDING and stalled.step == step
    quiet = world.store.schedule.policy.bulk_quiet_after
    [indexed] = world.index_rows(job_id, "bulk-step")
    assert indexed["DueAt"] <= stalled.updated_at + quiet

    report = world.run_across(quiet, OUTCOME)
    assert report.outcomes[OUTCOME] == 1 and report.calls == 0
    assert world.store.bulk.get(job_id).step_resends == 1  # type: ignore[union-attr]

    # The resent step reads the last row and moves the job on; its successors follow by themselves.
    assert run_next_message(world) == {"job": job_id, "step": step, "generation": 1}
    resumed = world.store.bulk.get(job_id)
    assert resumed is not None and resumed.read_done and resumed.step == step + 1 and resumed.step_resends == 0
    assert sum(1 for _ in world.store.bulk.rows(job_id)) == 3
    sign_and_archive_every_package(world, job_id)
    while not world.store.bulk.get(job_id).state.is_final:  # type: ignore[union-attr]
        run_next_message(world)
    done = world.store.bulk.get(job_id)
    assert done is not None and done.state is JobState.COMPLETED
    assert world.index_rows(job_id) == []  # final: nothing left to watch

    world.clock.advance(hours=3)
    assert world.run().outcomes[OUTCOME] == 0


def test_a_step_resent_twice_runs_once_and_a_job_that_never_moves_is_given_up_on(world: World) -> None:
    job_id = started_job(world, rows=3)
    step = step_that_dies_before_sending(world, job_id)
    quiet = world.store.schedule.policy.bulk_quiet_after
    for count in range(1, MAX_BULK_STEP_RESENDS + 1):
        world.clock.advance(seconds=(quiet * 2 ** (count - 1)).total_seconds() + 60)
        assert world.run().outcomes[OUTCOME] == 1
        assert world.store.bulk.get(job_id).step_resends == count  # type: ignore[union-attr]
    assert world.index_rows(job_id) == []  # the re-sends are spent: an operator looks (docs/BULK_SEND.md)
    world.clock.advance(days=2)
    assert world.run().outcomes[OUTCOME] == 0

    # Every message names the lost step: the first runs it, the rest find the job past it and do nothing.
    messages = list(feed_queue(world).receive_messages(max_messages=32))
    assert [json.loads(message.content)["step"] for message in messages] == [step] * MAX_BULK_STEP_RESENDS
    for _ in messages:
        feeder.run_step(world.store, world.settings, job_id, step, no_client)
    after = world.store.bulk.get(job_id)
    assert after is not None and after.step == step + 1 and after.read_done
