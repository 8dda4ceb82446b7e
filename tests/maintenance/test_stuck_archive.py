"""Rows left in Finished without their archive request (the reader died between its write and the send, or
the message went to the poison queue) get it again from the timer, and the package is archived."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from devtools.azurite import Azurite
from shared.config import Settings
from shared.pipeline.archive import ArchiveOutcome, handle_archive_request
from shared.storage import names
from shared.storage.packages import PackageRecord
from shared.storage.schedule import MAX_ARCHIVE_RESENDS, DuePolicy
from shared.storage.status import PackageStatus
from tests.conftest import SandboxHandle
from tests.maintenance.world import World, quiet_world
from tests.pipeline.callback_world import act, actors, insert_row

THRESHOLD = timedelta(minutes=15)  # ARCHIVE_STUCK_AFTER_MIN's default


@pytest.fixture()
def world(sandbox: SandboxHandle, fresh_azurite: Azurite) -> World:
    return quiet_world(sandbox, fresh_azurite.connection_string)


def new_ref() -> str:
    return f"ar-{uuid.uuid4().hex[:12]}"


def finished_without_request(world: World) -> PackageRecord:
    """A package signed at the sandbox whose reader wrote Finished and died before it asked for the archive."""
    pending = world.pending_package(new_ref())
    package_id = pending.connective_package_id
    assert package_id is not None
    for actor in actors(world.sandbox, package_id):
        act(world.sandbox, package_id, actor["id"], "sign")

    def reader_wrote_finished(row: PackageRecord) -> bool:
        row.status, row.connective_status = PackageStatus.FINISHED, "Finished"
        return True

    record = world.store.packages.mutate(pending.ref, reader_wrote_finished)
    assert record is not None and record.archive_requested_at is None
    return record


def archive_messages(world: World) -> list[dict[str, Any]]:
    queue = world.store.clients.queue(names.ARCHIVE_REQUESTS_QUEUE)
    return [json.loads(message.content) for message in queue.peek_messages(max_messages=32)]


def test_a_finished_row_whose_archive_request_was_never_sent_is_sent_again_and_archived(world: World) -> None:
    record = finished_without_request(world)
    [indexed] = world.index_rows(record.ref, "archive")
    assert indexed["DueAt"] == record.updated_at + THRESHOLD

    report = world.run_across(THRESHOLD, "archive:resent")
    assert report.outcomes["archive:resent"] == 1 and report.calls == 0
    assert archive_messages(world) == [{"packageRef": record.ref, "reason": "maintenance"}]
    [event] = world.events(record.ref, "archive_resent")
    assert (event["count"], event["status"], event["requested_at"]) == (1, "Finished", None)
    row = world.row(record.ref)
    assert row.archive_resends == 1 and row.archive_requested_at is not None

    queue = world.store.clients.queue(names.ARCHIVE_REQUESTS_QUEUE)
    [message] = queue.receive_messages(max_messages=32)
    result = handle_archive_request(world.store, world.client, world.settings, json.loads(message.content))
    queue.delete_message(message)
    assert result.outcome is ArchiveOutcome.ARCHIVED
    assert world.row(record.ref).status is PackageStatus.ARCHIVED
    assert world.index_rows(record.ref) == []  # archived: nothing left to recover

    world.clock.advance(hours=3)
    assert world.run().outcomes["archive:resent"] == 0
    assert archive_messages(world) == []


def test_the_archive_falls_due_after_the_last_write_to_the_row_doubling_per_resend() -> None:
    policy = DuePolicy.from_settings(Settings({}))
    written = datetime(2030, 5, 1, 12, 0, tzinfo=UTC)
    row = PackageRecord(ref="ar-policy", status=PackageStatus.FINISHED, connective_package_id="p", updated_at=written)
    assert policy.archive_due(row) == written + THRESHOLD
    # A later write (a callback, an archive attempt that found the files not ready) is progress.
    later = row.model_copy(update={"updated_at": written + timedelta(minutes=10)})
    assert policy.archive_due(later) == written + timedelta(minutes=10) + THRESHOLD
    assert [policy.archive_due(row.model_copy(update={"archive_resends": n})) for n in range(MAX_ARCHIVE_RESENDS + 1)] \
        == [written + THRESHOLD * 2**n for n in range(MAX_ARCHIVE_RESENDS)] + [None]
    for status in (PackageStatus.PENDING, PackageStatus.ARCHIVED, PackageStatus.REJECTED):
        assert policy.archive_due(row.model_copy(update={"status": status})) is None


def test_a_row_that_stays_finished_is_sent_again_less_often_then_left_to_an_operator(world: World) -> None:
    stuck = insert_row(world.store, new_ref(), f"done-{uuid.uuid4().hex[:8]}", status=PackageStatus.FINISHED)
    world.clock.advance(minutes=16)
    assert world.run().outcomes["archive:resent"] == 1
    row = world.row(stuck.ref)
    [indexed] = world.index_rows(stuck.ref, "archive")
    assert row.archive_resends == 1 and indexed["DueAt"] == row.updated_at + 2 * THRESHOLD

    exhausted = insert_row(world.store, new_ref(), f"done-{uuid.uuid4().hex[:8]}", status=PackageStatus.FINISHED,
                           archive_resends=MAX_ARCHIVE_RESENDS)
    assert world.index_rows(exhausted.ref, "archive") == []
    for status in (PackageStatus.ARCHIVED, PackageStatus.REJECTED):
        ended = insert_row(world.store, new_ref(), f"done-{uuid.uuid4().hex[:8]}", status=status)
        assert world.index_rows(ended.ref) == []
