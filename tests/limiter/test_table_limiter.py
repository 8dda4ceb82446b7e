"""The shared limiter on real Azurite, under contention from several processes."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid

import pytest

from devtools.azurite import PROJECT_ROOT, Azurite
from devtools.ports import free_port
from shared.connective.ratelimit import RateLimitDeferred, RateLimiterUnavailable
from shared.storage.ratelimit import ServiceClock, TableRateLimiter
from tests.limiter.windows import most_in_any_window, window_fill

CALLS = 20
WINDOW_S = 2.0
VALIDITY_S = 0.3
LATENCY_MARGIN_S = 0.05
DURATION_S = 6.0
# Every process starts together this long after launch, once Python and the SDK are imported.
STARTUP_S = 2.5


def _unique_key() -> str:
    return f"http://sandbox.test/webportalapi/v3|{uuid.uuid4().hex}"


def _hammer(connection_string: str, clock_options: list[dict[str, float]]) -> tuple[float, list[list[float]]]:
    """Run one hammer process per entry of `clock_options` on one connection; their grant times."""
    start_at = time.time() + STARTUP_S
    common = {
        "connection_string": connection_string, "connection_key": _unique_key(), "calls": CALLS,
        "window_s": WINDOW_S, "lease_validity_s": VALIDITY_S, "latency_margin_s": LATENCY_MARGIN_S,
        "start_at": start_at, "duration_s": DURATION_S,
    }
    processes = [
        subprocess.Popen([sys.executable, "-m", "tests.limiter.hammer", json.dumps({**common, **clock})],
                         cwd=PROJECT_ROOT, stdout=subprocess.PIPE)
        for clock in clock_options
    ]
    outputs = [process.communicate(timeout=STARTUP_S + DURATION_S + 20)[0] for process in processes]
    assert all(process.returncode == 0 for process in processes)
    return start_at, [json.loads(output) for output in outputs]


def _assert_rule_and_use(start_at: float, per_process: list[list[float]], least_use: float) -> None:
    grants = [moment for process in per_process for moment in process]
    assert most_in_any_window(grants, WINDOW_S) <= CALLS
    # The horizon (window + lease validity + latency margin + clock uncertainty) is about 2.45 s
    # once the service clock is measured, so a compressed 2 s window uses about 80 %. In an
    # instance's first seconds its clock is known only to about +-0.5 s (Date has whole seconds),
    # which can stretch the first gap to 3-4 s: small beside a 60 s window, large beside 2 s.
    assert window_fill(grants, start_at + WINDOW_S, start_at + DURATION_S, CALLS, WINDOW_S) >= least_use
    assert sum(1 for process in per_process if process) >= 2


def test_four_processes_share_one_budget(storage_connection_string: str) -> None:
    start_at, per_process = _hammer(storage_connection_string, [{}] * 4)
    _assert_rule_and_use(start_at, per_process, least_use=0.5)


def test_processes_with_skewed_and_stepping_clocks_keep_the_rule(storage_connection_string: str) -> None:
    clocks = [
        {"clock_offset_s": 0.0},
        {"clock_offset_s": 3.0},
        {"clock_offset_s": -3.0},
        # An NTP-like forward step in the middle of the run.
        {"clock_offset_s": 0.7, "clock_jump_s": 1.5, "clock_jump_after_s": DURATION_S / 2},
    ]
    start_at, per_process = _hammer(storage_connection_string, clocks)
    _assert_rule_and_use(start_at, per_process, least_use=0.45)


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


def _limiter(connection_string: str, key: str, **options: float) -> TableRateLimiter:
    values = {"lease_validity_s": 0.5, "latency_margin_s": 0.05, "clock_skew_s": 0.02, **options}
    return TableRateLimiter(connection_string, key, int(values.pop("calls", 20)), float(values.pop("window_s", 1.0)),
                            lease_size=int(values.pop("lease_size", 8)), **values)


def _take_until_deferred(limiter: TableRateLimiter) -> tuple[int, RateLimitDeferred]:
    taken = 0
    while True:
        try:
            limiter.acquire(max_wait_s=0)
        except RateLimitDeferred as deferred:
            return taken, deferred
        taken += 1


def test_a_crashed_instance_leases_are_accounted_then_expire(storage_connection_string: str) -> None:
    key = _unique_key()
    crashed = _limiter(storage_connection_string, key)
    # Leases grow 1, 2, 4, 8 while they are used up: after 8 calls the instance holds 7 unused tokens.
    for _ in range(8):
        crashed.acquire(max_wait_s=0)
    leased_at = time.monotonic()
    del crashed

    survivor = _limiter(storage_connection_string, key)
    taken, deferred = _take_until_deferred(survivor)
    assert taken == 20 - 15
    horizon = 1.0 + 0.5 + 0.05
    assert 0 < deferred.retry_after_s <= horizon + 1.1

    survivor.acquire(max_wait_s=horizon + 1.5)
    # The crashed instance's unused tokens came back only once its lease could no longer be spent.
    assert time.monotonic() - leased_at >= 1.0 + 0.4


def test_unused_tokens_of_an_expired_lease_return_to_the_budget(storage_connection_string: str) -> None:
    key = _unique_key()
    holder = _limiter(storage_connection_string, key, calls=15)
    for _ in range(8):
        holder.acquire(max_wait_s=0)  # leases of 1, 2, 4 and 8: the budget is spent, 7 tokens unused
    other = _limiter(storage_connection_string, key, calls=15)
    assert _take_until_deferred(other)[0] == 0
    time.sleep(0.55)
    # The holder's lease is over: its next lease reports the 7 unused tokens, which others may then use.
    holder.acquire(max_wait_s=0)
    newcomer = _limiter(storage_connection_string, key, calls=15)
    assert _take_until_deferred(newcomer)[0] == 15 - 8 - 1
    with pytest.raises(RateLimitDeferred):
        holder.acquire(max_wait_s=0)


def test_defers_at_once_with_a_useful_retry_after(storage_connection_string: str) -> None:
    limiter = _limiter(storage_connection_string, _unique_key(), calls=3, window_s=5.0)
    for _ in range(3):
        limiter.acquire(max_wait_s=0)
    began = time.monotonic()
    with pytest.raises(RateLimitDeferred) as deferred:
        limiter.acquire(max_wait_s=1.0)
    assert time.monotonic() - began < 0.5
    assert 5.0 < deferred.value.retry_after_s < 6.7


def test_unreachable_table_fails_closed() -> None:
    connection_string = Azurite(table_port=free_port()).connection_string
    limiter = _limiter(connection_string, _unique_key(), unavailable_retry_s=7.0, request_timeout_s=1.0)
    with pytest.raises(RateLimiterUnavailable) as unavailable:
        limiter.acquire(max_wait_s=5)
    assert unavailable.value.retry_after_s == pytest.approx(7.0)
    assert "unreachable" in str(unavailable.value)
    began = time.monotonic()
    with pytest.raises(RateLimiterUnavailable):
        limiter.acquire(max_wait_s=5)
    assert time.monotonic() - began < 0.05


def test_a_held_lease_outlives_a_table_outage(fresh_azurite: Azurite) -> None:
    limiter = _limiter(fresh_azurite.connection_string, _unique_key(), lease_validity_s=5.0, request_timeout_s=1.0)
    for _ in range(4):
        limiter.acquire(max_wait_s=0)  # leases of 1, 2, then 4 with 3 left
    fresh_azurite.stop()
    for _ in range(3):
        limiter.acquire(max_wait_s=0)
    with pytest.raises(RateLimiterUnavailable):
        limiter.acquire(max_wait_s=1)
