"""Timer triggers: on schedule, schedule status in host storage, one past-due run after a missed one."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from devtools.azurite import Azurite
from tests.host.conftest import Storage, start_host, wait_for

STATUS_PREFIX = "timers/"


def _ticks(storage: Storage) -> list[dict]:
    return sorted(storage.calls("timer_tick"), key=lambda row: row["fired_at"])


def _status(storage: Storage) -> dict:
    container = storage.blobs.get_container_client("azure-webjobs-hosts")
    names = [b.name for b in container.list_blobs(name_starts_with=STATUS_PREFIX)]
    assert len(names) == 1 and names[0].endswith("/Host.Functions.timer_tick/status")
    return json.loads(container.get_blob_client(names[0]).download_blob().readall())


def test_fires_on_schedule_then_past_due_once_after_a_missed_run(fresh_azurite: Azurite, tmp_path: Path) -> None:
    storage = Storage(fresh_azurite.connection_string)
    host = start_host(fresh_azurite.connection_string, tmp_path)
    try:
        ticks = wait_for(lambda: len(_ticks(storage)) >= 2 and _ticks(storage))
    finally:
        host.stop()
    assert not any(row["past_due"] for row in ticks)
    status = _status(storage)
    # `*/2 * * * * *`: occurrences on even seconds, UTC. The status records the occurrences; when the
    # function itself ran depends on the machine's load and is no part of the schedule.
    for moment in (datetime.fromisoformat(status["Last"]), datetime.fromisoformat(status["Next"])):
        assert moment.second % 2 == 0 and moment.microsecond == 0
    missed = datetime.fromisoformat(status["Next"])
    # Stay down past the next occurrence, then start again: one catch-up run marked past due.
    wait_for(lambda: datetime.now(UTC) > missed + timedelta(seconds=1), interval_s=0.2)
    before = len(ticks)
    host = start_host(fresh_azurite.connection_string, tmp_path)
    try:
        wait_for(lambda: len(_ticks(storage)) >= before + 2)
    finally:
        host.stop()
    after = _ticks(storage)[before:]
    assert after[0]["past_due"] is True
    assert [row["past_due"] for row in after[1:]] == [False] * (len(after) - 1)
    assert datetime.fromisoformat(_status(storage)["Last"]) > missed
