"""The chaos run: many inputs through the local host while Connective, callbacks, storage and workers misbehave.

    .venv/bin/python -m bench.chaos [--inputs 200] [--runs 3] [--workers 3] [--seed 1] [--timeout 600]

One run: a fresh LocalWorld (Azurite with on-disk data, the sandbox, the host with `--workers`
workers) gets `--inputs` inputs at once, a mix of single PDFs and batch manifests, some of them
rejected by the sandbox's auto-sign. The sandbox answers 10 % of API calls with 500 or 503, holds
5 % of answers past the client's read timeout, throttles (429) when the workers' local limiters
together exceed its budget, and duplicates (30 %), reorders and drops (10 %) callbacks. Once a
quarter of the inputs are final, one host worker is killed (the host starts a new one); once half
are, Azurite is stopped and started again on its on-disk data.

When every row is final, or the time is up, the faults are switched off and the outcome is
audited (bench/_audit.py): every input Archived or Rejected as designed, exactly one Connective
package per input, no duplicate archive files, no lost input blob, every row present, in time.

The counts are printed and written to bench/results/chaos-latest.json (every run of the
invocation); docs/HARDENING.md explains them. The exit status is 0 when every run met the goals.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from azure.storage.blob import BlobServiceClient

from bench._audit import audit, poison_messages
from bench._inputs import DroppedInput, chaos_mix, drop
from bench._progress import TERMINAL, read_rows, wait_until_settled
from bench._world import BenchWorld
from shared.storage.clients import StorageClients
from shared.storage.packages import PackageRecord
from shared.storage.store import Store

RESULTS = Path(__file__).resolve().parent / "results" / "chaos-latest.json"
# The client gives up on an answer after this many seconds; the sandbox holds hanging answers longer.
READ_TIMEOUT_S = 3
HANG_S = 5
# Compressed budget: 100 calls per 10 s at the sandbox, and each worker's local limiter believes it
# owns the whole budget, so three workers together run into the sandbox's 429s.
RATE_CALLS, RATE_WINDOW_S = 100, 10
DROP_THREADS = 8


@dataclass(frozen=True)
class ChaosPlan:
    inputs: int = 200
    workers: int = 3
    seed: int = 1
    timeout_s: float = 600.0
    kill_worker_at: float = 0.25  # share of inputs final when a worker is killed
    restart_azurite_at: float = 0.5  # ... and when Azurite restarts

    def sandbox_knobs(self) -> list[str]:
        return ["--fault-500-rate", "0.05", "--fault-503-rate", "0.05",
                "--hang-rate", "0.05", "--hang-seconds", str(HANG_S),
                "--rate-calls", str(RATE_CALLS), "--rate-window", str(RATE_WINDOW_S),
                "--callback-duplicate-rate", "0.3", "--callback-drop-rate", "0.1", "--callback-reorder",
                "--seed", str(self.seed)]

    def settings(self) -> dict[str, str]:
        return {
            "CONNECTIVE_READ_TIMEOUT_S": str(READ_TIMEOUT_S),
            "CONNECTIVE_RETRY_TOTAL_S": "30",
            "CONNECTIVE_RATE_CALLS": str(RATE_CALLS),
            "CONNECTIVE_RATE_WINDOW_S": str(RATE_WINDOW_S),
            "CONNECTIVE_RATE_LIMITER": "local",
            # A killed worker's creation resumes once its lease lapses: the shortest lease these call
            # settings allow (2 s rate wait + 30 s retries + 5 s connect + 3 s read, + 15).
            "CREATION_LEASE_S": "60",
            # A maintenance run killed with its worker leaves its claimed index rows claimed for its time
            # budget + 1 min (shared.maintenance.runner): a 20 s budget lets them come back within 80 s.
            "MAINTENANCE_TIME_BUDGET_S": "20",
            # A creation whose message went to poison after faults on every try is sent again by the
            # timer once its row has sat unchanged this long (30 min in production).
            "STUCK_CREATION_AFTER_MIN": "1",
            # Reconciliation recovers packages whose callbacks were dropped: run it every 5 s for rows
            # without news for 6 s (the setting is in hours).
            "MAINTENANCE_SCHEDULE": "*/5 * * * * *",
            "RECONCILE_AFTER_H": "0.0017",
        }


class Disruptions:
    """Kills one worker, then restarts Azurite, as the run passes the plan's progress marks."""

    def __init__(self, bench: BenchWorld, plan: ChaosPlan, inputs: list[DroppedInput], started: float) -> None:
        self.bench, self.plan, self.inputs, self.started = bench, plan, inputs, started
        self.rng = random.Random(plan.seed)
        self.events: list[dict[str, Any]] = []

    def _done(self, name: str) -> bool:
        return any(event["event"] == name for event in self.events)

    def __call__(self, rows: dict[str, PackageRecord], _waited_s: float) -> None:
        elapsed_s = time.monotonic() - self.started
        final = sum(1 for i in self.inputs if i.ref in rows and rows[i.ref].status in TERMINAL) / len(self.inputs)
        if not self._done("worker_killed") and final >= self.plan.kill_worker_at:
            index = self.rng.randrange(self.plan.workers)
            started = time.monotonic()
            new_pid = self.bench.world.kill_worker(index)
            self._record("worker_killed", elapsed_s, final, worker=index, new_pid=new_pid,
                         replaced_in_s=round(time.monotonic() - started, 1))
        elif self._done("worker_killed") and not self._done("azurite_restarted") \
                and final >= self.plan.restart_azurite_at:
            started = time.monotonic()
            self.bench.world.restart_azurite()
            self._record("azurite_restarted", elapsed_s, final, down_s=round(time.monotonic() - started, 1))

    def _record(self, name: str, elapsed_s: float, final: float, **details: Any) -> None:
        event = {"event": name, "at_s": round(elapsed_s, 1), "final_share": round(final, 2), **details}
        self.events.append(event)
        print(f"  {elapsed_s:6.1f} s  {name}: {details}", flush=True)


MAINTENANCE_FUNCTION = "scheduled_upkeep"  # functions/maintenance.py


def _maintenance_timer_present(bench: BenchWorld) -> bool:
    assert bench.world.host is not None
    return MAINTENANCE_FUNCTION in bench.world.host.status().get("functions", [])


def _problem_logs(bench: BenchWorld, refs: set[str]) -> list[str]:
    """The host's log lines about the inputs that missed a goal, for the bug report."""
    assert bench.world.host is not None
    return [line for line in bench.world.host.lines if any(ref in line for ref in refs)]


def run_once(plan: ChaosPlan) -> dict[str, Any]:
    """One chaos run; its counts, events and the details of every input that missed a goal."""
    print(f"chaos: {plan.inputs} inputs, {plan.workers} workers, seed {plan.seed}", flush=True)
    with BenchWorld(workers=plan.workers, sandbox_knobs=plan.sandbox_knobs(), settings=plan.settings()) as bench:
        blobs = BlobServiceClient.from_connection_string(bench.connection_string)
        started = time.monotonic()
        with ThreadPoolExecutor(DROP_THREADS) as pool:
            inputs = list(pool.map(lambda spec: drop(blobs, spec), chaos_mix(plan.inputs, plan.seed)))
        print(f"  dropped {len(inputs)} inputs in {time.monotonic() - started:.1f} s", flush=True)
        disruptions = Disruptions(bench, plan, inputs, started)
        store = Store(StorageClients(bench.connection_string))
        rows = wait_until_settled(store, inputs, plan.timeout_s - (time.monotonic() - started), on_tick=disruptions)
        elapsed = time.monotonic() - started
        bench.configure(fault_500_rate=0, fault_503_rate=0, hang_rate=0)
        rows = read_rows(store) or rows
        outcome = audit(bench, inputs, rows)
        stats = bench.stats()
        assert bench.world.host is not None
        workers = bench.world.host.status()["workers"]
        counts = {
            "inputs": len(inputs),
            "single_pdfs": sum(1 for i in inputs if i.spec.documents == 1),
            "manifests": sum(1 for i in inputs if i.spec.documents > 1),
            "designed_to_reject": sum(1 for i in inputs if i.spec.rejected),
            **{f"status_{name}": n for name, n in sorted(outcome.statuses.items())},
            **outcome.counts,
            "seconds": round(elapsed, 1),
            "timed_out": int(elapsed >= plan.timeout_s),
            "connective_calls": sum(stats["calls_by_operation"].values()),
            "faults_5xx": stats["faults"]["500"] + stats["faults"]["503"],
            "faults_hang": stats["faults"]["hang"],
            "throttled_429": stats["throttled"],
            "callbacks_sent": stats["callbacks"]["sent"],
            "callbacks_duplicated": stats["callbacks"]["duplicated"],
            "callbacks_reordered": stats["callbacks"]["reordered"],
            "callbacks_dropped": stats["callbacks"]["dropped"],
            "worker_restarts": sum(int(w.get("restarts", 0)) for w in workers),
            **{f"poison.{name}": n for name, n in poison_messages(bench.connection_string).items()},
        }
        goals_met = outcome.goals_met and not counts["timed_out"]
        return {"plan": asdict(plan), "goals_met": goals_met, "counts": counts, "events": disruptions.events,
                "maintenance_timer": _maintenance_timer_present(bench),
                "problems": outcome.problems,
                "problem_logs": _problem_logs(bench, {problem["ref"] for problem in outcome.problems})}


def print_run(result: dict[str, Any]) -> None:
    print(f"\ngoals {'MET' if result['goals_met'] else 'MISSED'}; maintenance timer "
          f"{'present' if result['maintenance_timer'] else 'absent'}")
    for key, value in result["counts"].items():
        print(f"  {key:34} {value}")
    for problem in result["problems"][:20]:
        print(f"  problem: {json.dumps(problem, default=str)}")
    if len(result["problems"]) > 20:
        print(f"  ... {len(result['problems']) - 20} more problems in {RESULTS}")
    if result["problem_logs"]:
        print("  host log lines of those packages (the last 80):")
        for line in result["problem_logs"][-80:]:
            print(f"    {line}")


def write_results(runs: list[dict[str, Any]]) -> None:
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
                                   "all_goals_met": all(run["goals_met"] for run in runs), "runs": runs},
                                  indent=2, default=str))
    print(f"wrote {RESULTS}")


def run(inputs: int = 200, runs: int = 1, workers: int = 3, seed: int = 1, timeout_s: float = 600.0,
        ) -> dict[str, object]:
    """`runs` chaos runs in a row (seeds seed, seed+1, ...); flat figures for bench/__main__."""
    results = []
    for index in range(runs):
        result = run_once(ChaosPlan(inputs=inputs, workers=workers, seed=seed + index, timeout_s=timeout_s))
        print_run(result)
        results.append(result)
        write_results(results)
    return {"chaos.runs": runs, "chaos.runs_meeting_goals": sum(1 for r in results if r["goals_met"]),
            **{f"chaos.{key}": value for key, value in results[-1]["counts"].items()}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__.split("\n\n")[0])
    parser.add_argument("--inputs", type=int, default=200)
    parser.add_argument("--runs", type=int, default=1, help="runs in a row, seeds --seed, --seed+1, ...")
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds one run may take")
    args = parser.parse_args(argv)
    figures = run(args.inputs, args.runs, args.workers, args.seed, args.timeout)
    print(f"\n{figures['chaos.runs_meeting_goals']} of {figures['chaos.runs']} runs met the goals")
    return 0 if figures["chaos.runs_meeting_goals"] == figures["chaos.runs"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
