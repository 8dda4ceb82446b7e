"""Saturation: several worker processes share one Connective connection's rate budget.

    python -m bench.saturation [--workers 4] [--rate-calls 100] [--rate-window 5] [--windows 6]

Time is compressed: the sandbox throttles `--rate-calls` per sliding `--rate-window` seconds
instead of 100 per 60 s, and the limiter's time constants (lease validity, latency margin, skew
floor) shrink by the same factor. What cannot shrink is the measured clock uncertainty between
instances, so a compressed run understates the budget use of a real 60 s window a little.

Two scenarios run against one sandbox and one Azurite:

- `saturation`: every worker process has a `TableRateLimiter` on the same entity, as the
  instances of a scaled-out function app do with `CONNECTIVE_RATE_LIMITER=table`.
- `saturation_local_only`: every worker has its own `LocalRateLimiter` with the whole budget,
  which is what a scaled-out app without the shared limiter does.

The load is a `Load`: today `ClientCallLoad`, where each worker process calls Get Package List
through `ConnectiveClient` as fast as its limiter allows. A load that drives packages through the
local host plugs in the same way: it returns the acceptance times per worker.

Figures per scenario: `budget_use_pct` (calls the sandbox accepted, as the mean fill of the
sliding window in the steady state, after a warm-up of `WARM_UP_WINDOWS`, in % of the budget; the
warm-up holds each instance's first leases, taken while its clock is known only to +-0.5 s), `throttled_429` (from
the sandbox's /_sandbox/stats), and the workers' shares (`worker_min_share_pct`,
`worker_max_share_pct`, Jain's fairness index `fairness`, 1.0 when every worker got the same).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import requests

from devtools.azurite import PROJECT_ROOT, Azurite
from devtools.ports import free_port, wait_for_port
from shared.connective import ConnectiveClient, ConnectiveConfig, ConnectiveError, RateLimitDeferred, RetryConfig
from shared.connective.ratelimit import LocalRateLimiter, RateLimiter
from shared.connective.table_ratelimit import TableRateLimiter
from tests.limiter.windows import window_fill

SANDBOX_USER = "bench"
SANDBOX_PASSWORD = "bench-saturation-pw"
REAL_WINDOW_S = 60.0
# Production defaults of the limiter (shared.config), shrunk by the time compression.
LEASE_VALIDITY_S = 1.0
LATENCY_MARGIN_S = 0.1
CLOCK_SKEW_S = 0.05
# Worker processes import the SDKs first, then all start at this many seconds after launch.
STARTUP_S = 3.0
WARM_UP_WINDOWS = 2


@dataclass(frozen=True)
class Budget:
    calls: int
    window_s: float

    @property
    def compression(self) -> float:
        return REAL_WINDOW_S / self.window_s


@dataclass(frozen=True)
class WorkerPlan:
    """Everything one worker process needs, passed to it as JSON."""

    shared_limiter: bool
    base_url: str
    storage_connection_string: str
    calls: int
    window_s: float
    start_at: float
    duration_s: float

    def limiter(self, connection_key: str) -> RateLimiter:
        budget = Budget(self.calls, self.window_s)
        margin = LATENCY_MARGIN_S / budget.compression
        if not self.shared_limiter:
            return LocalRateLimiter(self.calls, self.window_s, margin)
        return TableRateLimiter(
            self.storage_connection_string, connection_key, self.calls, self.window_s,
            lease_validity_s=LEASE_VALIDITY_S / budget.compression, latency_margin_s=margin,
            clock_skew_s=CLOCK_SKEW_S / budget.compression,
        )


def run_worker(plan: WorkerPlan) -> list[float]:
    """Call Get Package List until the run ends; the wall-clock times of accepted calls."""
    config = ConnectiveConfig(plan.base_url, SANDBOX_USER, SANDBOX_PASSWORD, rate_calls=plan.calls,
                              rate_window_s=plan.window_s, retry=RetryConfig(max_attempts=3, total_s=plan.window_s))
    client = ConnectiveClient(config, plan.limiter(config.connection_key))
    time.sleep(max(0.0, plan.start_at - time.time()))
    end_at = plan.start_at + plan.duration_s
    accepted: list[float] = []
    while (remaining := end_at - time.time()) > 0:
        try:
            client.with_rate_wait(remaining).package_list(max_quantity=1)
        except RateLimitDeferred:
            break
        except ConnectiveError:
            continue  # a 429 that outlived the retries: the sandbox counts it
        accepted.append(time.time())
    return accepted


class Load(Protocol):
    def run(self, plans: Sequence[WorkerPlan]) -> list[list[float]]:
        """Run one worker per plan; the times at which the sandbox accepted each worker's calls."""
        ...


class ClientCallLoad:
    """Worker processes calling the API through ConnectiveClient, each with the limiter its plan names."""

    def run(self, plans: Sequence[WorkerPlan]) -> list[list[float]]:
        processes = [
            subprocess.Popen([sys.executable, "-m", "bench.saturation", "--worker", json.dumps(asdict(plan))],
                             cwd=PROJECT_ROOT, stdout=subprocess.PIPE)
            for plan in plans
        ]
        timeout = max(plan.start_at + plan.duration_s for plan in plans) - time.time() + 60
        outputs = [process.communicate(timeout=timeout)[0] for process in processes]
        for process in processes:
            if process.returncode != 0:
                raise RuntimeError(f"a saturation worker exited with {process.returncode}")
        return [json.loads(output) for output in outputs]


def fairness(counts: Sequence[int]) -> float:
    """Jain's index: 1.0 when every worker got the same share, 1/n when one got everything."""
    squares = sum(count * count for count in counts)
    return sum(counts) ** 2 / (len(counts) * squares) if squares else 0.0


class Sandbox:
    """A sandbox process of this benchmark's own, throttling at the given budget."""

    def __init__(self, budget: Budget) -> None:
        self.port = free_port()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "devtools.sandbox", "--host", "127.0.0.1", "--port", str(self.port),
             "--user", f"{SANDBOX_USER}:{SANDBOX_PASSWORD}", "--rate-calls", str(budget.calls),
             "--rate-window", str(budget.window_s)],
            cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        wait_for_port(self.port, timeout_s=15)
        self.admin_url = f"http://127.0.0.1:{self.port}/_sandbox"
        self.base_url = f"http://127.0.0.1:{self.port}/webportalapi/v3"

    def reset(self) -> None:
        requests.post(f"{self.admin_url}/reset", timeout=10).raise_for_status()

    def stats(self) -> dict[str, Any]:
        response = requests.get(f"{self.admin_url}/stats", timeout=10)
        response.raise_for_status()
        return dict(response.json())

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


def measure(name: str, shared_limiter: bool, load: Load, sandbox: Sandbox, storage: str, budget: Budget,
            workers: int, windows: int) -> dict[str, float]:
    sandbox.reset()
    start_at = time.time() + STARTUP_S
    duration_s = windows * budget.window_s
    plan = WorkerPlan(shared_limiter, sandbox.base_url, storage, budget.calls, budget.window_s, start_at, duration_s)
    print(f"{name}: {workers} workers, {budget.calls} calls / {budget.window_s:g} s, {duration_s:g} s", flush=True)
    per_worker = load.run([plan] * workers)
    stats = sandbox.stats()
    counts = [len(times) for times in per_worker]
    accepted = sum(counts)
    shares = [100.0 * count / accepted if accepted else 0.0 for count in counts]
    figures = {
        f"{name}.budget_use_pct": round(100.0 * window_fill(
            [moment for times in per_worker for moment in times], start_at + WARM_UP_WINDOWS * budget.window_s,
            start_at + duration_s, budget.calls, budget.window_s), 1),
        f"{name}.throttled_429": int(stats["throttled"]),
        f"{name}.accepted_calls": accepted,
        f"{name}.worker_min_share_pct": round(min(shares), 1),
        f"{name}.worker_max_share_pct": round(max(shares), 1),
        f"{name}.fairness": round(fairness(counts), 3),
    }
    for key, value in figures.items():
        print(f"  {key} = {value}", flush=True)
    return figures


def run(workers: int = 4, rate_calls: int = 100, rate_window_s: float = 5.0, windows: int = 8,
        load: Load | None = None) -> dict[str, object]:
    budget = Budget(rate_calls, rate_window_s)
    load = load or ClientCallLoad()
    results: dict[str, object] = {}
    with Azurite() as azurite:
        sandbox = Sandbox(budget)
        try:
            results.update(measure("saturation", True, load, sandbox, azurite.connection_string, budget,
                                   workers, windows))
            results.update(measure("saturation_local_only", False, load, sandbox, azurite.connection_string,
                                   budget, workers, WARM_UP_WINDOWS + 2))
        finally:
            sandbox.close()
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.saturation", description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--rate-calls", type=int, default=100)
    parser.add_argument("--rate-window", type=float, default=5.0)
    parser.add_argument("--windows", type=int, default=8, help="length of the shared-limiter run, in windows")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        # The client logs every call; a worker reports only its figures.
        logging.basicConfig(level=logging.ERROR)
        print(json.dumps(run_worker(WorkerPlan(**json.loads(args.worker)))))
        return
    results = run(args.workers, args.rate_calls, args.rate_window, args.windows)
    print(f"\nbudget use {results['saturation.budget_use_pct']} % (goal >= 95), "
          f"429s {results['saturation.throttled_429']} (goal 0); without the shared limiter "
          f"{results['saturation_local_only.throttled_429']} 429s")


if __name__ == "__main__":
    main()
