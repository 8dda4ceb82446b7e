"""Saturation: four host workers drain a backlog through one Connective connection's rate budget.

    .venv/bin/python -m bench.saturation [--packages 300] [--workers 4] [--rate-calls 100] [--rate-window 10]
                                         [--cpu-hog N] [--loaded-only]

A LocalWorld (Azurite, the sandbox auto-signing after 1 s, the local host with `--workers`
worker processes) gets a backlog of `--packages` single-document, single-signer packages on the
package-requests queue, then its workers start on it. Each package costs about four calls (Create
Instant Package, the status read after the callback, the signed document, the audit proof); the
run ends when every package is Archived.

The backlog is built while the host is stopped: the bench uploads the PDFs (with signer metadata)
to a container no trigger watches and runs the inbox intake (`shared.pipeline.intake`, what the
blob trigger runs) on each. Through the host's blob trigger, intake would run while creation
drains the queue: it spends no Connective call, but checks each PDF in a child process, and on the
2-core reference machine it records fewer packages a second than the compressed budget drains (5),
so no backlog would ever form and the figure would measure intake, not the budget's sharing.

Time is compressed: the sandbox throttles `--rate-calls` per sliding `--rate-window` seconds
instead of 100 per 60 s, and the limiter's lease validity and clock-skew floor (registry defaults
of shared.config) shrink by the same factor. The latency margin (0.1 s, the trip from a request
leaving to its arrival) and the permits' send allowance (0.05 s, from the grant to the request
leaving) do not: both are tens of milliseconds on a busy machine whatever the window. What does
not shrink (those two, the queues' polling and visibility delays, the measured clock uncertainty
between instances, the auto-sign delay) weighs 6 times more in a 10 s window than in a 60 s one,
so a compressed run understates the budget use of a real one: the limiter alone allows at most
W / (W + lease validity + send allowance + margin + clock uncertainties), about 93-95 % at 5 s,
96-97 % at 10 s and 98 % at 60 s. The default window is therefore 10 s: at 5 s the bound itself sits at the goal.

Two scenarios in one world, the host restarted between them with another limiter and the sandbox reset:

- `saturation`: `CONNECTIVE_RATE_LIMITER=table`, the budget shared through the Table `RateLimits`
  by the workers and the host's HTTP front end (which runs the callbacks), as the instances of a
  scaled-out function app share it.
- `saturation_local_only`: `CONNECTIVE_RATE_LIMITER=local`, every process with the whole budget to
  itself, on half the backlog. It is stopped `LOCAL_ONLY_EXTRA_WINDOWS` windows after the time at which
  the shared run's steady state ended (counted from the host's start), or after `LOCAL_ONLY_LIMIT_S`
  (60 s) if sooner, and reports what it achieved by then: the 429s show within the first windows.

- `saturation_loaded` (with `--cpu-hog N`, N > 0): the shared scenario again, with N busy processes
  (bench/_load.py) running beside the world from the host's start to the end of the run. A function
  app's instance shares its cores with other invocations; the limiter must keep the budget when the
  time from a grant to the request leaving stretches. `python -m bench` runs it with a hog on each
  of the reference machine's 2 cores (`--loaded-only` runs only this scenario).

Figures (per scenario, `saturation.`, `saturation_local_only.` or `saturation_loaded.`):

- `budget_use_pct`: the mean fill of the sliding window, in % of the budget, from the times at
  which the sandbox's throttle accepted the app's calls (`/_sandbox/stats?times=1`), over the
  steady state. The steady state starts `WARM_UP_WINDOWS` windows after the first accepted call
  (left out: the workers' first leases, taken while each instance's clock is known only to +-1 s,
  its Table Date headers not yet measured, while the queue listeners fill up) and ends at the last
  read of the rows (every `ROWS_POLL_S`) that found a package still waiting to be created
  (Received, which includes creations deferred for want of a token). Left out: the tail after the
  backlog is gone, when only the last packages' status reads and downloads remain, paced by the
  sandbox's callbacks (one sender, one at a time) rather than by the budget, and the app has less
  work than budget, which says nothing about sharing the budget.
- `throttled_429`: the 429s the sandbox answered the app.
- `late_permits`: rate permits that expired before their request could leave (`connective.late_permit`
  lines in the host's log): the request was not sent and took a new permit.
- `deferred_calls`: calls that found no rate token within their wait and went back to their queue
  (`connective.deferred` lines): many while the budget is far from full says the limiter holds the
  app back; few says the app (or the machine) asks for less than the budget.
- `send_delay_p50_ms`, `send_delay_p99_ms`, `send_delay_max_ms`: the time from the limiter's count of a
  call (its slot, or its lease's grant) to the request leaving, from `send_delay_ms` on the host's
  `connective.call` lines; a permit allows the lease's validity plus 50 ms.
- `machine_idle_pct`: the machine's idle CPU over the steady state (Linux /proc/stat). Near 0, the
  machine, not the budget, limits how fast the app asks for calls: Azurite, the sandbox, the host
  and the bench share its cores, and the budget use then says more about the machine than about
  the limiter.
- `archived`, `accepted_calls`, `calls_per_package` (accepted calls / archived packages), `seconds`
  (from the host's start to the last package archived, or to the time limit).
- Fairness, from the host's log: each `connective.call` line that the sandbox accepted (an answer
  other than 429) is joined by invocation id to its `host.invocation` line, which names the
  process. `worker_min_share_pct` / `worker_max_share_pct` (shares of the workers' calls) and
  `fairness` (Jain's index over the workers, 1.0 when they all got the same); the callbacks run in
  the host's HTTP front end, whose share of all calls is `http_front_share_pct`.

Packages per minute at the real budget, and with it doubled, are bench.e2e_throughput's (`e2e.*`).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any

import requests
from azure.core.exceptions import ResourceExistsError
from azure.storage.blob import BlobServiceClient

from bench._inputs import DroppedInput, InputSpec, drop
from bench._load import cpu_hog, load_average
from bench._progress import status_counts, wait_until_settled
from bench._world import BenchWorld
from shared.config import Settings
from shared.pipeline.intake import intake_inbox_blob
from shared.storage.clients import StorageClients
from shared.storage.packages import PackageRecord
from shared.storage.status import PackageStatus
from shared.storage.store import Store
from tests.limiter.windows import window_fill

REAL_WINDOW_S = 60.0
# Limiter durations shrunk with the window. The latency margin and the send allowance are not: they cover the
# time from a token's grant to the call's arrival, which on a busy machine is tens of milliseconds whatever
# the window.
WARM_UP_WINDOWS = 2


def scaled_limiter_settings(compression: float) -> dict[str, str]:
    """The table limiter's lease validity and clock skew, shrunk with the window."""
    defaults = Settings({})
    return {"CONNECTIVE_RATE_LEASE_VALIDITY_S": f"{defaults.connective_rate_lease_validity_s / compression:.6f}",
            "CONNECTIVE_RATE_CLOCK_SKEW_S": f"{defaults.connective_rate_clock_skew_s / compression:.6f}"}
LOCAL_ONLY_EXTRA_WINDOWS = 2
# The local-only run shows what the shared limiter buys (the 429s) within its first minute; a smaller backlog and a
# shorter run keep `python -m bench` under 20 minutes.
LOCAL_ONLY_LIMIT_S = 60.0
LOCAL_ONLY_BACKLOG_SHARE = 0.5
# The shared run has this long (from the host's start) to archive everything; the local-only run as long as it took.
RUN_LIMIT_S = 150.0
PROGRESS_EVERY_S = 5.0
# Reading every row costs Azurite and the bench CPU the app needs; `seconds` and the steady state's end are
# exact to this much.
ROWS_POLL_S = 2.0
INTAKE_THREADS = 8
# Watched by no trigger: the bench runs intake on these PDFs itself, before the workers start.
BACKLOG_CONTAINER = "saturation-backlog"
THROTTLED = 429
# The timer's sweeps and reminders are not part of draining a backlog; once a year keeps them out.
NO_MAINTENANCE = "0 0 0 1 1 *"
PROC_STAT = "/proc/stat"


@dataclass(frozen=True)
class Budget:
    calls: int
    window_s: float

    @property
    def compression(self) -> float:
        return REAL_WINDOW_S / self.window_s

    def app_settings(self, limiter: str) -> dict[str, str]:
        scaled = scaled_limiter_settings(self.compression)
        return {"CONNECTIVE_RATE_CALLS": str(self.calls), "CONNECTIVE_RATE_WINDOW_S": f"{self.window_s:g}",
                "CONNECTIVE_RATE_LIMITER": limiter, "MAINTENANCE_SCHEDULE": NO_MAINTENANCE, **scaled}

    def sandbox_knobs(self) -> list[str]:
        return ["--rate-calls", str(self.calls), "--rate-window", f"{self.window_s:g}"]


@dataclass(frozen=True)
class Scenario:
    name: str
    limiter: str


SHARED = Scenario("saturation", "table")
LOCAL_ONLY = Scenario("saturation_local_only", "local")
LOADED = Scenario("saturation_loaded", "table")


@dataclass
class Observation:
    """What one scenario's run left behind: the sandbox's view, the host's log and the rows."""

    scenario: Scenario
    budget: Budget
    started_at: float  # wall clock, the host's start
    seconds: float  # from the host's start to the last row settled, or to the time limit
    rows: dict[str, PackageRecord]
    inputs: list[DroppedInput]
    accepted_times: list[float]
    throttled: int
    calls: list[dict[str, Any]]  # the host's connective.call lines
    pid_by_invocation: dict[str, int]
    worker_pids: list[int]
    front_pid: int
    machine: MachineIdle
    backlog_until: float  # wall clock of the last read of the rows that found a package waiting to be created
    late_permits: int = 0
    deferred: int = 0  # calls that found no rate token within their wait (`connective.deferred` lines)
    load_average: float | None = None  # 1-minute load average at the end of the run

    @property
    def archived(self) -> int:
        return sum(1 for i in self.inputs if i.ref in self.rows and self.rows[i.ref].status is PackageStatus.ARCHIVED)


def build_backlog(bench: BenchWorld, count: int, prefix: str) -> list[DroppedInput]:
    """Upload `count` PDFs and record each as the inbox trigger would: rows Received, messages queued."""
    blobs = BlobServiceClient.from_connection_string(bench.connection_string)
    with contextlib.suppress(ResourceExistsError):
        blobs.create_container(BACKLOG_CONTAINER)
    store = Store(StorageClients(bench.connection_string))
    settings = Settings(bench.world.settings)
    container = blobs.get_container_client(BACKLOG_CONTAINER)

    def record(index: int) -> DroppedInput:
        dropped = drop(blobs, InputSpec(f"{prefix}-{index:04d}", inbox=BACKLOG_CONTAINER))
        intake_inbox_blob(store, settings, container.get_blob_client(dropped.blobs[0]))
        return dropped

    started = time.monotonic()
    last_report = started
    inputs = []
    with ThreadPoolExecutor(INTAKE_THREADS) as pool:
        for future in as_completed([pool.submit(record, index) for index in range(count)]):
            inputs.append(future.result())
            if time.monotonic() - last_report >= PROGRESS_EVERY_S:
                last_report = time.monotonic()
                print(f"  backlog {len(inputs)}/{count} after {last_report - started:.0f} s", flush=True)
    rows = [store.packages.get(i.ref) for i in inputs]
    received = sum(1 for row in rows if row is not None and row.status is PackageStatus.RECEIVED)
    print(f"  backlog of {received} Received packages in {time.monotonic() - started:.1f} s", flush=True)
    return inputs


@dataclass
class MachineIdle:
    """Samples of the machine's idle CPU time (Linux /proc/stat), to tell a busy machine from a starved budget."""

    samples: list[tuple[float, int, int]] = field(default_factory=list)  # wall clock, idle jiffies, all jiffies

    def sample(self) -> None:
        try:
            with open(PROC_STAT) as stat:
                jiffies = [int(value) for value in stat.readline().split()[1:]]
        except (OSError, ValueError):
            return  # not Linux: the figure is left out
        self.samples.append((time.time(), jiffies[3] + jiffies[4], sum(jiffies)))  # idle + iowait

    def idle_pct(self, start: float, end: float) -> float | None:
        """Idle share of all CPU time between the samples nearest to `start` and `end`."""
        inside = [sample for sample in self.samples if start <= sample[0] <= end]
        if len(inside) < 2 or inside[-1][2] == inside[0][2]:
            return None
        return 100.0 * (inside[-1][1] - inside[0][1]) / (inside[-1][2] - inside[0][2])


@dataclass
class RunWatch:
    """Called after every read of the rows: samples the machine, notes whether the backlog is still there,
    and every few seconds prints where the packages are, the calls the sandbox accepted and the 429s."""

    bench: BenchWorld
    inputs: list[DroppedInput]
    machine: MachineIdle = field(default_factory=MachineIdle)
    backlog_seen_at: float = 0.0  # wall clock of the last read that found a package waiting to be created
    printed_at: float = field(default=-math.inf)

    def __call__(self, rows: dict[str, PackageRecord], elapsed_s: float) -> None:
        self.machine.sample()
        if any(i.ref not in rows or rows[i.ref].status is PackageStatus.RECEIVED for i in self.inputs):
            self.backlog_seen_at = time.time()
        if elapsed_s - self.printed_at < PROGRESS_EVERY_S:
            return
        self.printed_at = elapsed_s
        stats = self.bench.stats()
        user = self.bench.world.sandbox_credentials[0]
        counts = status_counts(self.inputs, rows)
        archived = counts.pop(PackageStatus.ARCHIVED.value, 0)
        print(f"  {elapsed_s:6.1f} s  archived {archived:4d}/{len(self.inputs)}  calls "
              f"{stats['calls_by_user'].get(user, 0):5d}  429s {stats['throttled']:4d}  "
              + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())), flush=True)


def observe(bench: BenchWorld, scenario: Scenario, budget: Budget, packages: int, limit_s: float,
            hog: int = 0) -> Observation:
    """Stop the host, build the backlog, start the host with the scenario's limiter and follow the packages
    (with `hog` busy processes beside the world from the host's start)."""
    host = bench.world.host
    assert host is not None
    print(f"{scenario.name}: {host.workers} workers, {scenario.limiter} limiter, {budget.calls} calls / "
          f"{budget.window_s:g} s, {packages} packages, at most {limit_s:.0f} s", flush=True)
    host.stop()
    host.env.update(budget.app_settings(scenario.limiter))
    requests.post(f"{bench.admin_url}/reset", timeout=30).raise_for_status()
    inputs = build_backlog(bench, packages, scenario.name)
    with cpu_hog(hog):
        started_at = time.time()
        host.start()
        print(f"  host with {host.workers} workers ready in {time.time() - started_at:.1f} s", flush=True)
        store = Store(StorageClients(bench.connection_string))
        watch = RunWatch(bench, inputs)
        rows = wait_until_settled(store, inputs, timeout_s=limit_s - (time.time() - started_at), on_tick=watch,
                                  poll_s=ROWS_POLL_S, report_every_s=math.inf)
        seconds = time.time() - started_at
        load = load_average()
    stats = bench.stats(times=True)
    user = bench.world.sandbox_credentials[0]
    assert host.process is not None
    return Observation(
        scenario, budget, started_at, seconds, rows, inputs,
        accepted_times=sorted(stats["accepted_times_by_user"].get(user, [])),
        throttled=int(stats["throttled_by_user"].get(user, 0)),
        calls=host.events("connective.call"),
        pid_by_invocation={e["invocation_id"]: int(e["pid"]) for e in host.events("host.invocation")},
        worker_pids=host.worker_pids(), front_pid=host.process.pid,
        machine=watch.machine, backlog_until=watch.backlog_seen_at,
        late_permits=len(host.events("connective.late_permit")), deferred=len(host.events("connective.deferred")),
        load_average=load,
    )


def accepted(call: dict[str, Any]) -> bool:
    """The sandbox took the call: it answered, and not with a 429."""
    return call.get("status") is not None and call["status"] != THROTTLED


def steady_state(observation: Observation) -> tuple[float, float]:
    """From WARM_UP_WINDOWS windows after the first accepted call to the last sight of a package waiting to be
    created; an empty span (0, 0) when there is none."""
    if not observation.accepted_times:
        return 0.0, 0.0
    start = observation.accepted_times[0] + WARM_UP_WINDOWS * observation.budget.window_s
    return (start, observation.backlog_until) if observation.backlog_until > start else (0.0, 0.0)


def fairness(counts: Sequence[int]) -> float:
    """Jain's index: 1.0 when every worker got the same share, 1/n when one got everything."""
    squares = sum(count * count for count in counts)
    return sum(counts) ** 2 / (len(counts) * squares) if squares else 0.0


def process_figures(observation: Observation) -> dict[str, float]:
    by_pid = Counter(observation.pid_by_invocation.get(c.get("invocation_id", ""), 0)
                     for c in observation.calls if accepted(c))
    unattributed = by_pid.pop(0, 0)
    front = by_pid.pop(observation.front_pid, 0)
    workers = [by_pid.pop(pid, 0) for pid in observation.worker_pids]
    replaced = sum(by_pid.values())  # calls of a worker that died and was replaced during the run
    print(f"  accepted calls by worker {workers}, HTTP front end {front}, replaced workers {replaced}, "
          f"outside any invocation {unattributed}", flush=True)
    total = sum(workers) + front
    shares = [100.0 * count / sum(workers) if sum(workers) else 0.0 for count in workers]
    return {
        "worker_min_share_pct": round(min(shares, default=0.0), 1),
        "worker_max_share_pct": round(max(shares, default=0.0), 1),
        "fairness": round(fairness(workers), 3),
        "http_front_share_pct": round(100.0 * front / total, 1) if total else 0.0,
    }


def send_delay_figures(calls: list[dict[str, Any]]) -> dict[str, float]:
    """Grant-to-send delays (`send_delay_ms` of the host's `connective.call` lines): median, 99th percentile, max."""
    delays = sorted(float(call["send_delay_ms"]) for call in calls if call.get("send_delay_ms") is not None)
    if not delays:
        return {}
    return {"send_delay_p50_ms": delays[len(delays) // 2],
            "send_delay_p99_ms": delays[min(len(delays) - 1, round(0.99 * (len(delays) - 1)))],
            "send_delay_max_ms": delays[-1]}


def scenario_figures(observation: Observation) -> dict[str, float]:
    budget = observation.budget
    start, end = steady_state(observation)
    use = window_fill(observation.accepted_times, start, end, budget.calls, budget.window_s) if end > start else 0.0
    print(f"  steady state from {start - observation.started_at:.1f} s to {end - observation.started_at:.1f} s "
          f"after the host's start", flush=True)
    archived = observation.archived
    idle = observation.machine.idle_pct(start, end)
    figures: dict[str, float] = {
        "budget_use_pct": round(100.0 * use, 1),
        "throttled_429": observation.throttled,
        "late_permits": observation.late_permits,
        "deferred_calls": observation.deferred,
        **send_delay_figures(observation.calls),
        "archived": archived,
        "accepted_calls": len(observation.accepted_times),
        "calls_per_package": round(len(observation.accepted_times) / archived, 2) if archived else 0.0,
        "seconds": round(observation.seconds, 1),
        **({} if idle is None else {"machine_idle_pct": round(idle, 1)}),
        **({} if observation.load_average is None else {"load_average": observation.load_average}),
        **process_figures(observation),
    }
    named = {f"{observation.scenario.name}.{key}": value for key, value in figures.items()}
    for key, value in named.items():
        print(f"  {key} = {value}", flush=True)
    return named


def run(packages: int = 300, workers: int = 4, rate_calls: int = 100, rate_window_s: float = 10.0,
        cpu_hog_processes: int = 0, loaded_only: bool = False) -> dict[str, object]:
    """The shared and local-only scenarios (unless `loaded_only`), then the loaded one if `cpu_hog_processes`."""
    budget = Budget(rate_calls, rate_window_s)
    results: dict[str, object] = {}
    with BenchWorld(workers=workers, sandbox_knobs=budget.sandbox_knobs(),
                    settings=budget.app_settings(SHARED.limiter)) as bench:
        if not loaded_only:
            shared = observe(bench, SHARED, budget, packages, RUN_LIMIT_S)
            results.update(scenario_figures(shared))
            # Long enough to cover the shared run's steady state: what 429s cost shows there, and the rest would
            # only add minutes to `python -m bench`.
            shared_end = steady_state(shared)[1] or shared.started_at + shared.seconds
            local_limit_s = min(LOCAL_ONLY_LIMIT_S,
                                shared_end - shared.started_at + LOCAL_ONLY_EXTRA_WINDOWS * budget.window_s)
            local_only = observe(bench, LOCAL_ONLY, budget, max(1, int(packages * LOCAL_ONLY_BACKLOG_SHARE)),
                                 local_limit_s)
            results.update(scenario_figures(local_only))
        if cpu_hog_processes:
            loaded = observe(bench, LOADED, budget, packages, RUN_LIMIT_S, hog=cpu_hog_processes)
            results.update(scenario_figures(loaded))
            results["saturation_loaded.cpu_hog"] = cpu_hog_processes
    return results


def run_loaded() -> dict[str, object]:
    """`python -m bench`'s loaded saturation: the shared scenario with a busy process on each of 2 cores."""
    return run(cpu_hog_processes=2, loaded_only=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.saturation", description=__doc__.split("\n\n")[0])
    parser.add_argument("--packages", type=int, default=300)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--rate-calls", type=int, default=100)
    parser.add_argument("--rate-window", type=float, default=10.0)
    parser.add_argument("--cpu-hog", type=int, default=0,
                        help="busy processes beside the world: adds the saturation_loaded scenario")
    parser.add_argument("--loaded-only", action="store_true", help="only the saturation_loaded scenario")
    args = parser.parse_args(argv)
    if args.loaded_only and not args.cpu_hog:
        parser.error("--loaded-only needs --cpu-hog N")
    results = run(args.packages, args.workers, args.rate_calls, args.rate_window, args.cpu_hog, args.loaded_only)
    if not args.loaded_only:
        print(f"\nbudget use {results['saturation.budget_use_pct']} % (goal >= 95), "
              f"429s {results['saturation.throttled_429']} (goal 0), fairness {results['saturation.fairness']}; "
              f"without the shared limiter {results['saturation_local_only.throttled_429']} 429s and "
              f"{results['saturation_local_only.archived']} of {max(1, int(args.packages * LOCAL_ONLY_BACKLOG_SHARE))} "
              f"archived in at most {LOCAL_ONLY_LIMIT_S:g} s")
    if args.cpu_hog:
        print(f"with {args.cpu_hog} busy processes: budget use {results['saturation_loaded.budget_use_pct']} % "
              f"(goal >= 93), 429s {results['saturation_loaded.throttled_429']} (goal 0)")


if __name__ == "__main__":
    main()
