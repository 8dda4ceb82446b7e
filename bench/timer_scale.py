"""Does a maintenance run cost what is due, or what is tracked?

Two storage accounts (two Azurite processes) and one sandbox: account A holds only 100 due Pending
packages; account B holds 100,000 ended packages (Archived or Rejected) plus 100 due Pending ones.
Each due package needs a reminder and a status read (reconciliation), 200 Connective calls per run on
either side. The runs alternate A, B for a few rounds on fresh due packages; the result is the ratio
of the best times. Goal: `timer.scale_ratio` <= 1.5 (the ended packages have no index rows, so they cost
nothing).

Writing 100,000 rows to Azurite takes minutes on a small machine (one request per row: each row is
its own partition, so no batch transactions). Account B is therefore kept on disk in the system's
temp folder and its finished rows are written only once; `timer.finished_rows_write_s` is the time of
that write (0 when reused). The due rows of earlier runs are removed before the timed runs.
After a first write, account B's Azurite is restarted, so the first run on a machine times the same
thing as the runs that reuse the rows (a fresh process that loaded the file), not a process still
saving what it just took. Each side goes first in one of the rounds.

Azurite's own cost is kept out of the comparison. On disk, Azurite keeps all of an account's tables in
one file and saves the whole file every 5 s while it has unsaved writes; a run's writes keep it dirty.
With A empty, B's Azurite spent about 2 s more CPU than A's on the same requests (3.7 to 3.9 s against
1.4 to 2.0 s, for 1,803 storage requests on each side), which made B's runs 1.2 to 1.75 times as long
as A's under loads of 4 to 14, while the run itself did the same work on both sides: the same 200
calls, the same storage requests (point reads and writes by key, a query of the due index rows
only), the same CPU. That cost follows the file's size, not the app's tracked rows (Azure Table
Storage has no such save), so A now holds the same file with B's tables renamed (`_ballast_copy`):
both Azurites load and save the same bytes, and only B's are the app's tracked packages.
`timer.cpu_ratio` is the CPU time of the run's process on B over A's (1.0 when the run's cost does
not depend on the tracked rows). `--in-memory` writes the rows afresh into in-memory Azurites instead
(no saves, no ballast; it takes minutes).
"""

from __future__ import annotations

import contextlib
import shutil
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from devtools.azurite import Azurite
from shared.config import Settings
from shared.connective import ConnectiveClient, ConnectiveConfig, LocalRateLimiter, RetryConfig
from shared.maintenance.budget import RunBudget
from shared.maintenance.runner import run_maintenance
from shared.maintenance.sweep import CHECKPOINT
from shared.storage import names
from shared.storage.clients import StorageClients
from shared.storage.packages import PackageRecord
from shared.storage.schedule import DuePolicy
from shared.storage.status import PackageStatus
from shared.storage.store import Store
from tests.conftest import SandboxHandle, start_sandbox, stop_process
from tests.pipeline.callback_world import pdf, stakeholder

GOAL_RATIO = 1.5
FINISHED = 100_000
DUE = 100
ROUNDS = 2
WRITERS = 32
CROWDED_DATA = Path(tempfile.gettempdir()) / f"connective-bench-timer-scale-{FINISHED}"
WRITTEN_MARKER = CROWDED_DATA / "finished-rows-written"
TABLE_FILE = "__azurite_db_table__.json"  # where Azurite keeps every table of the account


def _settings(azurite: Azurite, sandbox: SandboxHandle) -> Settings:
    return Settings({"DocumentStorage": azurite.connection_string, "CONNECTIVE_BASE_URL": sandbox.base_url,
                     "CONNECTIVE_USERNAME": sandbox.user, "CONNECTIVE_PASSWORD": sandbox.password,
                     "MAINTENANCE_TIME_BUDGET_S": "120"})


def _client(sandbox: SandboxHandle) -> ConnectiveClient:
    config = ConnectiveConfig(base_url=sandbox.base_url, username=sandbox.user, password=sandbox.password,
                              retry=RetryConfig(max_attempts=3, total_s=10), rate_calls=100_000)
    return ConnectiveClient(config, LocalRateLimiter(100_000, 60))


def _store(settings: Settings) -> Store:
    return Store(StorageClients.from_settings(settings), DuePolicy.from_settings(settings))


def _write_finished(settings: Settings) -> float:
    """FINISHED rows through the repository (and its index hook), WRITERS threads. Returns seconds."""
    started = time.monotonic()
    created = datetime.now(UTC) - timedelta(days=30)

    def write(chunk: range) -> None:
        store = _store(settings)
        for n in chunk:
            store.packages.insert(PackageRecord(ref=f"done-{n:07d}", status=PackageStatus.ARCHIVED if n % 2 else
                                                PackageStatus.REJECTED, source="bench", connective_package_id=f"c{n}",
                                                created_at=created, pending_since=created, reminder_count=1))

    step = FINISHED // WRITERS + 1
    with ThreadPoolExecutor(WRITERS) as pool:
        list(pool.map(write, [range(start, min(start + step, FINISHED)) for start in range(0, FINISHED, step)]))
    return time.monotonic() - started


def _forget_due(store: Store) -> None:
    """Remove the due packages and index rows an earlier run left in a reused account."""
    schedule = store.clients.table("PackageSchedule")
    for entity in list(schedule.query_entities("PartitionKey ge @first", parameters={"first": "due-"})):
        schedule.delete_entity(entity["PartitionKey"], entity["RowKey"])
    for record in list(store.packages.query("PartitionKey ge @first and PartitionKey lt @last",
                                            {"first": "due-", "last": "due."})):
        store.packages.delete(record.ref)


def _add_due(store: Store, client: ConnectiveClient) -> None:
    """DUE Pending packages at the sandbox, their rows pending for 49 h: a reminder and a read each are due."""
    since = datetime.now(UTC) - timedelta(hours=49)

    def add(_: int) -> None:
        ref = f"due-{uuid.uuid4().hex[:12]}"
        body = {"Initiator": "owner@example.com", "DocumentName": ref, "ExternalPackageReference": ref,
                "Stakeholders": [stakeholder("signer@example.com", fields=[
                    {"PageNumber": 1, "Left": "72", "Top": "600", "Width": "180", "Height": "60"}])]}
        package_id = client.create_instant_package(body, pdf(ref)).package_id
        store.packages.insert(PackageRecord(ref=ref, status=PackageStatus.PENDING, source="bench",
                                            connective_package_id=package_id, created_at=since, pending_since=since))

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(add, range(DUE)))


@dataclass(frozen=True)
class TimedRun:
    seconds: float
    cpu_s: float  # CPU time of this process (every thread of the run) during the run
    calls: int


def _timed_run(store: Store, client: ConnectiveClient, settings: Settings) -> TimedRun:
    started, cpu_started = time.monotonic(), time.process_time()
    report = run_maintenance(store, client, settings, budget=RunBudget(120, LocalRateLimiter(100_000, 60)))
    elapsed, cpu_s = time.monotonic() - started, time.process_time() - cpu_started
    done = report.outcomes["reminder:reminded"]
    if done != DUE or report.stopped:
        raise RuntimeError(f"the run did not finish its due work: {report.as_log()}")
    return TimedRun(elapsed, cpu_s, report.calls)


def _ballast_copy(target: Path) -> None:
    """Account B's data with the app's tables renamed: the same bytes for Azurite to load and save, no rows of the app.

    Azurite keeps an account's tables in one file and, while it has unsaved writes, saves the whole file every
    5 s: a cost that follows what the account holds, whichever table holds it. With this copy under A, both
    sides pay it alike, and what is left of the difference is what the tracked rows cost the run.
    """
    shutil.copytree(CROWDED_DATA, target, dirs_exist_ok=True)
    (target / WRITTEN_MARKER.name).unlink(missing_ok=True)
    table_file = target / TABLE_FILE
    text = table_file.read_text()
    for table in (names.PACKAGES_TABLE, names.SCHEDULE_TABLE, names.EVENTS_TABLE):
        # The table's entry in Azurite's table list, and its collection's name and type.
        text = text.replace(f'"table":"{table}"', f'"table":"Ballast{table}"')
        text = text.replace(f'${table}"', f'$Ballast{table}"')
    table_file.write_text(text)


def run(in_memory: bool = False) -> dict[str, object]:
    sandbox = start_sandbox("--rate-calls", "0")
    try:
        CROWDED_DATA.mkdir(parents=True, exist_ok=True)
        reuse = not in_memory and WRITTEN_MARKER.exists()
        with contextlib.ExitStack() as stack:
            crowded = stack.enter_context(Azurite(location=None if in_memory else CROWDED_DATA))
            client = _client(sandbox)
            write_s = 0.0
            if reuse:
                print(f"timer_scale: reusing {FINISHED:,} finished package rows in {CROWDED_DATA}", flush=True)
            else:
                print(f"timer_scale: writing {FINISHED:,} finished package rows with {WRITERS} threads "
                      f"(once; kept in {CROWDED_DATA}) ...", flush=True)
                write_s = _write_finished(_settings(crowded, sandbox))
                if not in_memory:
                    WRITTEN_MARKER.write_text(f"{FINISHED} rows written in {write_s:.1f} s\n")
                print(f"timer_scale: written in {write_s:.1f} s ({FINISHED / write_s:,.0f} rows/s)", flush=True)
            alone_data: Path | None = None
            if not in_memory:
                # Copied while no Azurite writes the file (stopping saves it). Restarted, B is timed as a reused
                # account is: a fresh process that loaded the file, not one that just took 100,000 writes.
                crowded.stop()
                alone_data = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="timer-scale-alone-")))
                _ballast_copy(alone_data)
                crowded.start()
            if reuse:
                _forget_due(_store(_settings(crowded, sandbox)))
            alone = stack.enter_context(Azurite(location=alone_data))
            sides = {}
            for name, azurite in (("alone", alone), ("crowded", crowded)):
                settings = _settings(azurite, sandbox)
                store = _store(settings)
                # No Package List sweep in the timed runs: it would list the same sandbox packages on both sides.
                _, etag = store.schedule.checkpoint(CHECKPOINT)
                store.schedule.save_checkpoint(CHECKPOINT, {"LastStartedAt": datetime.now(UTC)}, etag)
                sides[name] = (settings, store)
            runs: dict[str, list[TimedRun]] = {"alone": [], "crowded": []}
            for round_number in range(1, ROUNDS + 1):
                # Each side goes first once: the first run after the set-up pays for warming up.
                for name in ("alone", "crowded") if round_number % 2 else ("crowded", "alone"):
                    settings, store = sides[name]
                    _add_due(store, client)
                    timed = _timed_run(store, client, settings)
                    runs[name].append(timed)
                    print(f"timer_scale: round {round_number}, {name}: {timed.seconds:.2f} s "
                          f"(CPU of the run's process {timed.cpu_s:.2f} s), {timed.calls} calls", flush=True)
    finally:
        stop_process(sandbox.process)
    alone_run, crowded_run = (min(runs[name], key=lambda timed: timed.seconds) for name in ("alone", "crowded"))
    ratio = crowded_run.seconds / alone_run.seconds
    alone_cpu_s = min(timed.cpu_s for timed in runs["alone"])
    crowded_cpu_s = min(timed.cpu_s for timed in runs["crowded"])
    return {
        "timer.due_alone_s": round(alone_run.seconds, 3),
        "timer.due_with_100k_finished_s": round(crowded_run.seconds, 3),
        "timer.scale_ratio": round(ratio, 3),
        "timer.scale_ratio_goal_ratio": round(ratio / GOAL_RATIO, 3),
        "timer.cpu_ratio": round(crowded_cpu_s / alone_cpu_s, 3),
        "timer.calls_per_run": crowded_run.calls,
        "timer.finished_rows_write_s": round(write_s, 1),
        "timer.finished_rows_in_memory": in_memory,
    }


if __name__ == "__main__":
    results = run(in_memory="--in-memory" in sys.argv[1:])
    for key, value in results.items():
        print(f"{key}: {value}")
    print(f"goal: time(100k finished + {DUE} due) / time({DUE} due) <= {GOAL_RATIO} "
          f"-> {results['timer.scale_ratio']} (goal ratio {results['timer.scale_ratio_goal_ratio']})")
