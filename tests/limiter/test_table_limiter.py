"""The shared limiter on real Azurite, under contention from several processes."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from devtools.azurite import PROJECT_ROOT, Azurite
from devtools.ports import free_port
from shared.connective.ratelimit import RateLimitDeferred, RateLimiterUnavailable
from shared.storage.ratelimit import ServiceClock, TableRateLimiter
from tests.limiter.windows import most_surely_in_any_window

CALLS = 20
WINDOW_S = 2.0
VALIDITY_S = 0.3
LATENCY_MARGIN_S = 0.05
DURATION_S = 6.0
# Generous bounds for a broken run only; the processes are started together once all are ready.
READY_TIMEOUT_S = 120.0


def _unique_key() -> str:
    return f"http://sandbox.test/webportalapi/v3|{uuid.uuid4().hex}"


def _hammer(connection_string: str, clock_options: list[dict[str, float]]) -> list[dict[str, Any]]:
    """Run one hammer process per entry of `clock_options` on one connection; what each reported."""
    common = {
        "connection_string": connection_string, "connection_key": _unique_key(), "calls": CALLS,
        "window_s": WINDOW_S, "lease_validity_s": VALIDITY_S, "latency_margin_s": LATENCY_MARGIN_S,
        "duration_s": DURATION_S,
    }
    processes = [
        subprocess.Popen([sys.executable, "-m", "tests.limiter.hammer", json.dumps({**common, **clock})],
                         cwd=PROJECT_ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        for clock in clock_options
    ]
    try:
        for process in processes:  # each has imported the SDK and built its limiter
            assert process.stdout is not None and process.stdout.readline().strip() == "ready"
        start_at = f"{time.time() + 0.2}\n"
        for process in processes:
            assert process.stdin is not None
            process.stdin.write(start_at)
            process.stdin.close()
        outputs = []
        for process in processes:
            assert process.stdout is not None
            outputs.append(process.stdout.read())  # the whole list, printed when its run is over
            process.wait(READY_TIMEOUT_S)
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    assert all(process.returncode == 0 for process in processes)
    return [json.loads(output) for output in outputs]


def _assert_rule_and_sharing(per_process: list[dict[str, Any]]) -> None:
    # Each call is known to have left within a [before, after] span; a span that a descheduled
    # process stretched counts in fewer windows, never in a wrong one. How much of the budget the
    # fleet uses is a figure of bench/saturation.py (budget_use_pct), not a test assertion: it
    # depends on how much CPU the processes get.
    spans = [span for process in per_process for span in process["sent"]]
    calls_per_process = [len(process["sent"]) for process in per_process]
    most = most_surely_in_any_window(spans, WINDOW_S)
    assert most <= CALLS, f"{most} calls in one {WINDOW_S} s window; calls per process {calls_per_process}"
    # Every process took part: it sent calls, or the others' leases left it no room. How the calls
    # split is not a promise: in a run this short, the few races for room can all go to one process
    # (Jain's index over 16 loaded runs: 0.25 to 0.97); bench/saturation.py reports `fairness` at
    # full scale.
    assert all(process["sent"] or process["turned_away"] for process in per_process), \
        f"calls per process {calls_per_process}; turned away {[p['turned_away'] for p in per_process]}"


def test_four_processes_share_one_budget(storage_connection_string: str) -> None:
    _assert_rule_and_sharing(_hammer(storage_connection_string, [{}] * 4))


def test_processes_with_skewed_and_stepping_clocks_keep_the_rule(storage_connection_string: str) -> None:
    clocks = [
        {"clock_offset_s": 0.0},
        {"clock_offset_s": 3.0},
        {"clock_offset_s": -3.0},
        # An NTP-like forward step in the middle of the run.
        {"clock_offset_s": 0.7, "clock_jump_s": 1.5, "clock_jump_after_s": DURATION_S / 2},
    ]
    _assert_rule_and_sharing(_hammer(storage_connection_string, clocks))


def test_service_clock_corrects_a_misset_local_clock() -> None:
    local_minus_service = 1234.5
    service_time = 1_800_000_000.0
    clock = ServiceClock(lambda: service_time + local_minus_service, floor_s=0.0)
    # Responses stamped (Date, whole seconds) at several phases of the service's second.
    for phase in (0.1, 0.4, 0.75, 0.97):
        service_time = 1_800_000_000.0 + phase
        local = service_time + local_minus_service
        clock.observe(local - 0.01, local + 0.01, float(int(service_time)))
    service_time += 0.3
    _, service_estimate, uncertainty = clock.now()
    assert abs(service_estimate - service_time) <= uncertainty < 0.1


def test_service_clock_restarts_after_a_clock_step() -> None:
    local = 100.0
    clock = ServiceClock(lambda: local, floor_s=0.0)
    clock.observe(local - 0.01, local + 0.01, 5000.0)
    local += 10.0  # the service moved 10 s, the local clock stepped 3 s further
    clock.observe(local + 3.0 - 0.01, local + 3.0 + 0.01, 5010.0)
    local += 3.0
    _, service_estimate, uncertainty = clock.now()
    assert abs(service_estimate - 5010.0) <= uncertainty + 0.02


class ManualClock:
    """A limiter's local clock that moves only when the test says: lease validity and waits on this
    clock do not depend on how fast the machine runs the test. (The table's own clock, read from its
    Date headers, still runs in real time; the tests keep their windows long beside any delay.)"""

    def __init__(self) -> None:
        self.now = time.monotonic()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def _limiter(connection_string: str, key: str, clock: Callable[[], float] = time.monotonic,
             sleep: Callable[[float], None] = time.sleep, **options: float) -> TableRateLimiter:
    values = {"lease_validity_s": 0.5, "latency_margin_s": 0.05, "clock_skew_s": 0.02, **options}
    return TableRateLimiter(connection_string, key, int(values.pop("calls", 20)), float(values.pop("window_s", 1.0)),
                            lease_size=int(values.pop("lease_size", 8)), clock=clock, sleep=sleep, **values)


def _take_until_deferred(limiter: TableRateLimiter) -> tuple[int, RateLimitDeferred]:
    taken = 0
    while True:
        try:
            limiter.acquire(max_wait_s=0)
        except RateLimitDeferred as deferred:
            return taken, deferred
        taken += 1


def test_a_crashed_instance_leases_are_accounted_then_expire(storage_connection_string: str) -> None:
    # The crashed instance's tokens come back in the table's (real) time, so this waits in real time;
    # a 3 s window keeps the survivor's first look inside the crashed leases' horizon on a loaded machine.
    window_s = 3.0
    key = _unique_key()
    crashed = _limiter(storage_connection_string, key, window_s=window_s)
    # Leases grow 1, 2, 4, 8 while they are used up: after 8 calls the instance holds 7 unused tokens.
    for _ in range(8):
        crashed.acquire(max_wait_s=0)
    leased_at = time.monotonic()
    del crashed

    survivor = _limiter(storage_connection_string, key, window_s=window_s)
    taken, deferred = _take_until_deferred(survivor)
    assert taken == 20 - 15
    horizon = window_s + 0.5 + 0.05
    assert 0 < deferred.retry_after_s <= horizon + 1.1

    survivor.acquire(max_wait_s=horizon + 1.5)
    # The crashed instance's unused tokens came back only once its lease could no longer be spent.
    assert time.monotonic() - leased_at >= window_s + 0.4


def test_unused_tokens_of_an_expired_lease_return_to_the_budget(storage_connection_string: str) -> None:
    key = _unique_key()
    holder_clock = ManualClock()
    # A window far longer than any delay of a loaded machine: every lease below overlaps every other.
    holder = _limiter(storage_connection_string, key, clock=holder_clock, calls=15, window_s=60.0)
    for _ in range(8):
        holder.acquire(max_wait_s=0)  # leases of 1, 2, 4 and 8: the budget is spent, 7 tokens unused
    other = _limiter(storage_connection_string, key, calls=15, window_s=60.0)
    assert _take_until_deferred(other)[0] == 0
    holder_clock.advance(0.6)  # past the 0.5 s validity of the holder's lease, on its own clock
    # The holder's lease is over: its next lease reports the 7 unused tokens, which others may then use.
    holder.acquire(max_wait_s=0)
    newcomer = _limiter(storage_connection_string, key, calls=15, window_s=60.0)
    assert _take_until_deferred(newcomer)[0] == 15 - 8 - 1
    with pytest.raises(RateLimitDeferred):
        holder.acquire(max_wait_s=0)


def test_defers_at_once_with_a_useful_retry_after(storage_connection_string: str) -> None:
    sleeps: list[float] = []
    limiter = _limiter(storage_connection_string, _unique_key(), sleep=sleeps.append, calls=3, window_s=5.0)
    began = time.monotonic()
    for _ in range(3):
        limiter.acquire(max_wait_s=0)
    with pytest.raises(RateLimitDeferred) as deferred:
        limiter.acquire(max_wait_s=1.0)
    assert sleeps == []  # the room is further off than the caller would wait: no sleeping first
    # The horizon (5 s window + 0.5 s validity + margins) counted from the leases, which began at
    # most `taken` ago: a slow machine shortens the wait that is left, never lengthens it.
    taken = time.monotonic() - began
    assert 5.0 - taken < deferred.value.retry_after_s < 6.7


def test_unreachable_table_fails_closed() -> None:
    connection_string = Azurite(table_port=free_port()).connection_string
    clock = ManualClock()
    limiter = _limiter(connection_string, _unique_key(), clock=clock, unavailable_retry_s=7.0, request_timeout_s=1.0)
    with pytest.raises(RateLimiterUnavailable) as unavailable:
        limiter.acquire(max_wait_s=5)
    assert unavailable.value.retry_after_s == pytest.approx(7.0)
    assert "unreachable" in str(unavailable.value)
    clock.advance(2.0)
    with pytest.raises(RateLimiterUnavailable) as again:
        limiter.acquire(max_wait_s=5)
    # What was left of the first wait: no new round trip (which would have started a new 7 s wait).
    assert again.value.retry_after_s == pytest.approx(5.0)


def test_a_held_lease_outlives_a_table_outage(fresh_azurite: Azurite) -> None:
    # The lease's validity runs on a clock that stands still, however long stopping Azurite takes.
    limiter = _limiter(fresh_azurite.connection_string, _unique_key(), clock=ManualClock(), lease_validity_s=5.0,
                       request_timeout_s=1.0)
    for _ in range(4):
        limiter.acquire(max_wait_s=0)  # leases of 1, 2, then 4 with 3 left
    fresh_azurite.stop()
    for _ in range(3):
        limiter.acquire(max_wait_s=0)
    with pytest.raises(RateLimiterUnavailable):
        limiter.acquire(max_wait_s=1)
