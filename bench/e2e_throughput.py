"""Packages per minute from drop to archive at the rate budget, and with the budget doubled.

    .venv/bin/python -m bench.e2e_throughput [--window 20] [--workers 2]

The budget is 100 calls per 60 s, and a single-PDF, single-signer package costs 4 calls, so at most
25 packages a minute can be archived. The run is compressed in time: the sandbox throttles at 100
calls per `--window` seconds (and the app's limiter is told the same, shared between the host's
workers through Table Storage as a scaled-out app does). A fresh LocalWorld gets a backlog of single
PDFs, three windows' worth, all at once. The steady rate comes from the sandbox's acceptance
times of the app's calls: the mean fill of the sliding window from one window after the 10th
percentile of those times to the 90th, as a fraction of the budget. (Archive completion times are not
used: archives bunch up behind the creations that hold the budget first, which overstates the rate
over any sub-span.)

    fraction            = mean sliding-window fill over the steady span / budget calls
    ideal               = budget calls per minute / calls per package (measured at the sandbox)
    e2e.packages_per_minute = fraction x 100 calls/min / calls per package   (at the real budget)

Then the same with 200 calls per window: `e2e.packages_per_minute_doubled`. A compressed run
understates the real figure a little (fixed delays, such as the auto-sign delay and the status
refresh delay, weigh more in a short window), so the extrapolation is conservative.
"""

from __future__ import annotations

import argparse
import math
from typing import Any

from azure.storage.blob import BlobServiceClient

from bench._inputs import InputSpec, drop
from bench._progress import wait_until_settled
from bench._world import BenchWorld
from shared.storage.clients import StorageClients
from shared.storage.status import PackageStatus
from shared.storage.store import Store
from tests.limiter.windows import window_fill

REAL_CALLS, REAL_WINDOW_S = 100, 60.0
WINDOWS_OF_BACKLOG = 3
NOMINAL_CALLS_PER_PACKAGE = 4


def measure(calls: int, window_s: float, workers: int) -> dict[str, Any]:
    """One compressed run; the achieved steady rate and what it cost."""
    compression = REAL_WINDOW_S / window_s
    packages = math.ceil(WINDOWS_OF_BACKLOG * calls / NOMINAL_CALLS_PER_PACKAGE)
    settings = {"CONNECTIVE_RATE_CALLS": str(calls), "CONNECTIVE_RATE_WINDOW_S": str(window_s),
                "CONNECTIVE_RATE_LIMITER": "table",
                "CONNECTIVE_RATE_LEASE_VALIDITY_S": str(1.0 / compression),
                "CONNECTIVE_RATE_LATENCY_MARGIN_S": str(0.1 / compression)}
    knobs = ["--rate-calls", str(calls), "--rate-window", str(window_s)]
    print(f"e2e: {packages} packages, {calls} calls / {window_s:g} s, {workers} workers", flush=True)
    with BenchWorld(workers=workers, sandbox_knobs=knobs, settings=settings) as bench:
        blobs = BlobServiceClient.from_connection_string(bench.connection_string)
        inputs = [drop(blobs, InputSpec(f"e2e-{calls}-{n}")) for n in range(packages)]
        rows = wait_until_settled(Store(StorageClients(bench.connection_string)), inputs,
                                  timeout_s=WINDOWS_OF_BACKLOG * window_s * 4 + 120)
        stats = bench.stats(times=True)
        app_user = bench.world.sandbox_credentials[0]
    archived = [row for row in rows.values() if row.status is PackageStatus.ARCHIVED]
    accepted = sorted(stats["accepted_times_by_user"].get(app_user, []))
    if len(archived) < 10 or len(accepted) < 10:
        raise RuntimeError(f"only {len(archived)} of {packages} packages were archived")
    # The mean fill of the sliding window between the 10th and 90th percentile of the acceptance times:
    # a plain count over that span would overstate the rate whenever the span cuts into a burst.
    low, high = round(0.1 * (len(accepted) - 1)), round(0.9 * (len(accepted) - 1))
    fraction = window_fill(accepted, accepted[low] + window_s, accepted[high], calls, window_s)
    calls_per_package = sum(stats["calls_by_operation"].values()) / len(archived)
    ideal_per_min = calls * compression / calls_per_package
    return {"packages": packages, "archived": len(archived), "achieved_per_min": fraction * ideal_per_min,
            "calls_per_package": calls_per_package, "fraction": fraction, "throttled": stats["throttled"]}


def run(window_s: float = 20.0, workers: int = 2) -> dict[str, object]:
    results: dict[str, object] = {}
    for suffix, factor in (("", 1), ("_doubled", 2)):
        measured = measure(REAL_CALLS * factor, window_s, workers)
        real_ideal = REAL_CALLS * factor * (60 / REAL_WINDOW_S) / measured["calls_per_package"]
        figures = {
            f"e2e.packages_per_minute{suffix}": round(measured["fraction"] * real_ideal, 1),
            f"e2e.budget_fraction{suffix}": round(measured["fraction"], 3),
            f"e2e.calls_per_package{suffix}": round(measured["calls_per_package"], 2),
            f"e2e.compressed_packages_per_minute{suffix}": round(measured["achieved_per_min"], 1),
            f"e2e.throttled_429{suffix}": measured["throttled"],
        }
        for key, value in figures.items():
            print(f"  {key} = {value}", flush=True)
        results.update(figures)
    base, doubled = (float(str(results[f"e2e.packages_per_minute{s}"])) for s in ("", "_doubled"))
    results["e2e.doubling_scale"] = round(doubled / base, 2) if base else 0.0
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.e2e_throughput", description=__doc__.split("\n\n")[0])
    parser.add_argument("--window", type=float, default=20.0, help="compressed rate window in seconds")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    for key, value in run(args.window, args.workers).items():
        print(f"{key} = {value}")


if __name__ == "__main__":
    main()
