"""The timer through the local host: no package gets a reminder twice in one interval.

Packages are dropped in signing-inbox with the sandbox's auto-sign off, so they stay Pending, and the
timer fires every second with a reminder policy of seconds. First with one host of two workers (the
host runs the timer as a singleton, so this checks the singleton), then with a second host on the
same storage and sandbox under another host id, whose timer lease does not collide: both hosts run
the timer at the same moments, and the index claims and the ETag-guarded reminder count still let
each reminder out once.
"""

from __future__ import annotations

import itertools
import json
import os
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from azure.storage.blob import BlobServiceClient

from devtools.host.process import HostProcess
from devtools.world import LocalWorld
from shared.storage import names
from shared.storage.clients import StorageClients
from shared.storage.packages import PackageRecord
from shared.storage.store import Store
from tests.conftest import wait_until
from tests.pipeline.intake_support import pdf_with_markers

pytestmark = [pytest.mark.slow]

FIRST_AFTER = timedelta(hours=0.0008)  # 2.88 s pending before the first reminder
EVERY = timedelta(hours=0.0012)  # 4.32 s between reminders
MAX_COUNT = 3
ONCE_FOLDER = "once"  # its routing profile allows one reminder
TIMER_SETTINGS = {
    "MAINTENANCE_SCHEDULE": "* * * * * *",  # every second
    "REMINDER_FIRST_AFTER_H": str(FIRST_AFTER / timedelta(hours=1)),
    "REMINDER_EVERY_H": str(EVERY / timedelta(hours=1)),
    "REMINDER_MAX_COUNT": str(MAX_COUNT),
    # Reminders only: reconciliation and the Package List sweep stay out of the way.
    "RECONCILE_AFTER_H": "1000",
    "MAINTENANCE_SWEEP_EVERY_MIN": "100000",
    "MAINTENANCE_TIME_BUDGET_S": "20",
    "ROUTING_PROFILES": json.dumps({ONCE_FOLDER: {
        "signers": [{"name": "Olga Once", "email": "olga@example.com"}], "reminders": {"maxCount": 1}}}),
}
# The event of a reminder is stamped after the call that sent it; the reminder was counted just before.
STAMP_SLACK = timedelta(seconds=0.5)
# How late a reminder goes out after it falls due depends on the machine's load: the test checks that
# none goes early, the right number goes, one per interval, and none more; lateness is no assertion.


@pytest.fixture(scope="module")
def world() -> Iterator[LocalWorld]:
    with LocalWorld(workers=2, settings_file=None, sandbox_args=[], extra_settings=TIMER_SETTINGS) as running:
        yield running


def drop(world: LocalWorld, names_by_folder: dict[str, int]) -> dict[str, int]:
    """Upload PDFs; returns blob name → reminders its policy allows."""
    blobs = BlobServiceClient.from_connection_string(world.storage_connection_string)
    allowed: dict[str, int] = {}
    for folder, count in names_by_folder.items():
        for _ in range(count):
            name = f"{folder + '/' if folder else ''}remind-{uuid.uuid4().hex[:8]}.pdf"
            metadata = {} if folder else {"signers": "Sam Signer <sam@example.com>"}
            blobs.get_blob_client(names.INBOX_CONTAINER, name).upload_blob(pdf_with_markers(), metadata=metadata)
            allowed[name] = 1 if folder == ONCE_FOLDER else MAX_COUNT
    return allowed


def pending_rows(store: Store, blob_names: set[str], timeout_s: float = 120) -> dict[str, PackageRecord]:
    deadline = time.monotonic() + timeout_s
    while True:
        found = {row.source_uri.split("/", 1)[1]: row for row in store.packages.query("Status eq 'Pending'")}
        found = {name: row for name, row in found.items() if name in blob_names}
        if len(found) == len(blob_names) or time.monotonic() > deadline:
            assert len(found) == len(blob_names), f"not Pending in time: {sorted(blob_names - set(found))}"
            return found
        time.sleep(0.3)


def wait_for_all_reminders(store: Store, rows: dict[str, PackageRecord], allowed: dict[str, int]) -> None:
    """Until every package has had what its policy allows; the deadline only bounds a broken run."""
    def all_sent() -> bool:
        current = {name: store.packages.get(row.ref) for name, row in rows.items()}
        return all(row is not None and row.reminder_count >= allowed[name] for name, row in current.items())

    wait_until(all_sent, timeout_s=(FIRST_AFTER + EVERY * (MAX_COUNT - 1)).total_seconds() + 120, interval_s=0.3)


def reminders_at_sandbox(world: LocalWorld) -> dict[str, int]:
    stats = requests.get(f"{world.sandbox_root_url}/_sandbox/stats", timeout=10).json()
    return {package_id.lower(): count for package_id, count in stats["reminders_by_package"].items()}


def check_reminders(world: LocalWorld, store: Store, rows: dict[str, PackageRecord], allowed: dict[str, int]) -> None:
    """Each package: exactly the reminders its policy allows, the first after FIRST_AFTER, then one per EVERY
    (never sooner; how much later depends on the load of the machine)."""
    at_sandbox = reminders_at_sandbox(world)
    for name, pending in rows.items():
        row = store.packages.get(pending.ref)
        assert row is not None and row.pending_since is not None and row.connective_package_id
        sent = sorted(store.events.history(row.ref), key=lambda event: event["at"])
        sent = [event for event in sent if event["kind"] == "reminder_sent"]
        context = f"{name}: {[(e['count'], e['at']) for e in sent]}"
        assert at_sandbox.get(row.connective_package_id.lower(), 0) == allowed[name], context
        assert row.reminder_count == allowed[name], context
        assert [event["count"] for event in sent] == list(range(1, allowed[name] + 1)), context
        times = [_moment(event["at"]) for event in sent]
        first_due = row.pending_since + FIRST_AFTER
        assert first_due - STAMP_SLACK <= times[0], context
        for earlier, later in itertools.pairwise(times):
            assert later - earlier >= EVERY - STAMP_SLACK, context
        schedule = store.clients.table(names.SCHEDULE_TABLE)
        assert not list(schedule.query_entities("PackageRef eq @ref and Kind eq 'reminder'",
                                                parameters={"ref": row.ref})), f"{context}: reminder still indexed"


def _moment(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def timer_runs(host: HostProcess) -> list[tuple[float, float, int]]:
    """(start, end, pid) of each run of the timer, from the host's invocation lines."""
    runs = []
    for line in host.events("host.invocation"):
        if line.get("function") == "scheduled_upkeep":
            end = datetime.fromisoformat(line["ts"]).timestamp()
            runs.append((end - line["duration_ms"] / 1000, end, int(line["pid"])))
    return sorted(runs)


def reminded_by(host: HostProcess) -> int:
    return sum(line.get("outcomes", {}).get("reminder:reminded", 0) for line in host.events("maintenance.run"))


def wait_for_a_run_once_more_reminders_would_be_due(host: HostProcess | None) -> None:
    """Until a timer run has started after a second reminder of every package would be due (one
    interval from now): a run that then sends none shows that nothing more goes out. An event to
    wait for, not a guess at how long the timer needs on a loaded machine."""
    assert host is not None
    due = time.time() + EVERY.total_seconds()
    wait_until(lambda: any(start > due for start, _, _ in timer_runs(host)), timeout_s=120)


def test_two_workers_send_each_reminder_once_at_its_interval(world: LocalWorld) -> None:
    assert world.host is not None
    store = Store(StorageClients(world.storage_connection_string))
    allowed = drop(world, {"": 4, ONCE_FOLDER: 1})
    rows = pending_rows(store, set(allowed))
    wait_for_all_reminders(store, rows, allowed)
    wait_for_a_run_once_more_reminders_would_be_due(world.host)  # and still nothing more goes out
    check_reminders(world, store, rows, allowed)

    runs = timer_runs(world.host)
    assert len(runs) >= 3  # several runs, by one worker or the other (how many depends on the load)
    # The singleton: one run at a time, whichever worker holds the lease.
    for (_, end, _), (start, _, _) in itertools.pairwise(runs):
        assert start >= end - 0.05
    assert reminded_by(world.host) == sum(allowed.values())


@pytest.fixture()
def second_host(world: LocalWorld) -> Iterator[HostProcess]:
    """Another host on the same storage and sandbox, under its own host id: its timer lease is its own."""
    env = {**world.settings, "AzureFunctionsWebHost__hostid": f"second-host-{uuid.uuid4().hex[:6]}"}
    host = HostProcess(app=world.app, workers=1, env=env, settings=Path(os.devnull))
    with host:
        yield host


def test_two_hosts_running_the_timer_at_once_still_remind_once(world: LocalWorld, second_host: HostProcess) -> None:
    assert world.host is not None
    reminded_before = reminded_by(world.host)
    store = Store(StorageClients(world.storage_connection_string))
    allowed = drop(world, {"": 5})
    rows = pending_rows(store, set(allowed))
    wait_for_all_reminders(store, rows, allowed)
    wait_for_a_run_once_more_reminders_would_be_due(world.host)
    check_reminders(world, store, rows, allowed)

    window_start = min(row.pending_since for row in rows.values()).timestamp()
    first = [run for run in timer_runs(world.host) if run[0] >= window_start]
    second = [run for run in timer_runs(second_host) if run[0] >= window_start]
    assert first and second, "both hosts must run the timer"
    overlapping = sum(1 for a in first for b in second if a[0] < b[1] and b[0] < a[1])
    # Both fire at every whole second; runs that overlap in time contend for the same due rows.
    assert overlapping >= 3, f"the hosts' runs overlapped only {overlapping} times"
    assert reminded_by(world.host) - reminded_before + reminded_by(second_host) == sum(allowed.values())
