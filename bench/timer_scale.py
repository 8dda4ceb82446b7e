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
On disk, Azurite saves its whole table file (about 90 MB here) every few seconds, which slows the
crowded side by itself; `--in-memory` writes the rows afresh into an in-memory Azurite instead, for
the comparison without that artefact (it takes longer).
"""

from __future__ import annotations

import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

from devtools.azurite import Azurite
from shared.config import Settings
from shared.connective import ConnectiveClient, ConnectiveConfig, LocalRateLimiter, RetryConfig
from shared.maintenance.budget import RunBudget
from shared.maintenance.runner import run_maintenance
from shared.maintenance.sweep import CHECKPOINT
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


def _timed_run(store: Store, client: ConnectiveClient, settings: Settings) -> tuple[float, int]:
    started = time.monotonic()
    report = run_maintenance(store, client, settings, budget=RunBudget(120, LocalRateLimiter(100_000, 60)))
    elapsed = time.monotonic() - started
    done = report.outcomes["reminder:reminded"]
    if done != DUE or report.stopped:
        raise RuntimeError(f"the run did not finish its due work: {report.as_log()}")
    return elapsed, report.calls


def run(in_memory: bool = False) -> dict[str, object]:
    sandbox = start_sandbox("--rate-calls", "0")
    try:
        CROWDED_DATA.mkdir(parents=True, exist_ok=True)
        reuse = not in_memory and WRITTEN_MARKER.exists()
        with Azurite() as alone, Azurite(location=None if in_memory else CROWDED_DATA) as crowded:
            client = _client(sandbox)
            sides = {}
            for name, azurite in (("alone", alone), ("crowded", crowded)):
                settings = _settings(azurite, sandbox)
                store = _store(settings)
                # No Package List sweep in the timed runs: it would list the same sandbox packages on both sides.
                _, etag = store.schedule.checkpoint(CHECKPOINT)
                store.schedule.save_checkpoint(CHECKPOINT, {"LastStartedAt": datetime.now(UTC)}, etag)
                sides[name] = (settings, store)
            write_s = 0.0
            if reuse:
                print(f"timer_scale: reusing {FINISHED:,} finished package rows in {CROWDED_DATA}", flush=True)
                _forget_due(sides["crowded"][1])
            else:
                print(f"timer_scale: writing {FINISHED:,} finished package rows with {WRITERS} threads "
                      f"(once; kept in {CROWDED_DATA}) ...", flush=True)
                write_s = _write_finished(sides["crowded"][0])
                if not in_memory:
                    WRITTEN_MARKER.write_text(f"{FINISHED} rows written in {write_s:.1f} s\n")
                print(f"timer_scale: written in {write_s:.1f} s ({FINISHED / write_s:,.0f} rows/s)", flush=True)
            times: dict[str, list[float]] = {"alone": [], "crowded": []}
            calls = 0
            for round_number in range(1, ROUNDS + 1):
                for name in ("alone", "crowded"):
                    settings, store = sides[name]
                    _add_due(store, client)
                    elapsed, calls = _timed_run(store, client, settings)
                    times[name].append(elapsed)
                    print(f"timer_scale: round {round_number}, {name}: {elapsed:.2f} s, {calls} calls", flush=True)
    finally:
        stop_process(sandbox.process)
    alone_s, crowded_s = min(times["alone"]), min(times["crowded"])
    ratio = crowded_s / alone_s
    return {
        "timer.due_alone_s": round(alone_s, 3),
        "timer.due_with_100k_finished_s": round(crowded_s, 3),
        "timer.scale_ratio": round(ratio, 3),
        "timer.scale_ratio_goal_ratio": round(ratio / GOAL_RATIO, 3),
        "timer.calls_per_run": calls,
        "timer.finished_rows_write_s": round(write_s, 1),
        "timer.finished_rows_in_memory": in_memory,
    }


if __name__ == "__main__":
    results = run(in_memory="--in-memory" in sys.argv[1:])
    for key, value in results.items():
        print(f"{key}: {value}")
    print(f"goal: time(100k finished + {DUE} due) / time({DUE} due) <= {GOAL_RATIO} "
          f"-> {results['timer.scale_ratio']} (goal ratio {results['timer.scale_ratio_goal_ratio']})")
