"""The in-process limiter and the per-connection factory."""

from __future__ import annotations

import threading
import time

import pytest

from shared.config import Settings
from shared.connection import limiter_from_settings
from shared.connective.ratelimit import (
    LocalRateLimiter,
    RateLimitDeferred,
    connection_key,
)
from shared.storage.ratelimit import TableRateLimiter
from tests.client.fakes import FakeClock
from tests.limiter.windows import most_surely_in_any_window

CALLS = 20
WINDOW_S = 1.0


def test_concurrent_threads_never_exceed_the_budget_in_any_window() -> None:
    limiter = LocalRateLimiter(CALLS, WINDOW_S, latency_margin_s=0.02, send_allowance_s=0.01)
    spans: list[list[float]] = []
    spans_lock = threading.Lock()
    end = time.monotonic() + 3 * WINDOW_S

    def hammer() -> None:
        while time.monotonic() < end:
            try:
                permit = limiter.acquire(max_wait_s=end - time.monotonic())
            except RateLimitDeferred:
                return
            before = time.monotonic()
            if permit.leave():  # a permit left too late on a busy machine is void: no call goes
                with spans_lock:
                    spans.append([before, time.monotonic()])

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    # Each call left at some moment within its span; a descheduled thread widens its span rather than
    # moving the call, so the rule is checked over the full window. How much of the budget the
    # threads use depends on the CPU they get: a figure for bench/, not an assertion.
    assert spans
    assert most_surely_in_any_window(spans, WINDOW_S) <= CALLS


def test_defers_at_once_when_the_wait_would_be_too_long() -> None:
    time_ = FakeClock()  # sleeping moves the clock: a loaded machine cannot stretch the waits
    limiter = LocalRateLimiter(3, 2.0, send_allowance_s=0.0, clock=time_.monotonic, sleep=time_.sleep)
    for _ in range(3):
        limiter.acquire(max_wait_s=0)
    with pytest.raises(RateLimitDeferred) as deferred:
        limiter.acquire(max_wait_s=0.5)
    assert time_.sleeps == []
    assert deferred.value.retry_after_s == pytest.approx(2.0)


def test_waits_for_a_token_within_the_allowed_wait() -> None:
    time_ = FakeClock()  # sleeping moves the clock: a loaded machine cannot stretch the waits
    limiter = LocalRateLimiter(2, 0.3, send_allowance_s=0.0, clock=time_.monotonic, sleep=time_.sleep)
    limiter.acquire(max_wait_s=0)
    time_.now += 0.1
    limiter.acquire(max_wait_s=0)
    limiter.acquire(max_wait_s=1.0)
    assert time_.sleeps == [pytest.approx(0.2)]  # until the first call leaves the window


def test_a_deferred_call_reserves_nothing() -> None:
    time_ = FakeClock()  # sleeping moves the clock: a loaded machine cannot stretch the waits
    limiter = LocalRateLimiter(1, 0.3, send_allowance_s=0.0, clock=time_.monotonic, sleep=time_.sleep)
    limiter.acquire(max_wait_s=0)
    for _ in range(5):
        with pytest.raises(RateLimitDeferred):
            limiter.acquire(max_wait_s=0)
    limiter.acquire(max_wait_s=1.0)
    assert time_.sleeps == [pytest.approx(0.3)]  # behind the one call granted, not behind five deferrals


def test_rejects_a_budget_that_allows_nothing() -> None:
    with pytest.raises(ValueError, match="at least one call"):
        LocalRateLimiter(0, 60)


def _settings(**values: str) -> Settings:
    return Settings({"CONNECTIVE_RATE_CALLS": "7", "CONNECTIVE_RATE_WINDOW_S": "60", **values})


def test_clients_of_one_connection_in_a_process_share_one_limiter() -> None:
    key = connection_key("http://sandbox.test/webportalapi/v3/", "user-a")
    first = limiter_from_settings(_settings(), key)
    assert first is limiter_from_settings(_settings(), key)
    assert first is not limiter_from_settings(_settings(), connection_key("http://sandbox.test/webportalapi/v3", "b"))
    assert isinstance(first, LocalRateLimiter)
    assert first.calls == 7
    assert key == connection_key("http://sandbox.test/webportalapi/v3", "user-a")


def test_table_limiter_is_chosen_by_setting(storage_connection_string: str) -> None:
    settings = _settings(CONNECTIVE_RATE_LIMITER="table", DocumentStorage=storage_connection_string)
    limiter = limiter_from_settings(settings, "http://sandbox.test/webportalapi/v3|factory")
    assert isinstance(limiter, TableRateLimiter)
    assert limiter is limiter_from_settings(settings, "http://sandbox.test/webportalapi/v3|factory")
    limiter.acquire(max_wait_s=1)


def test_an_unknown_limiter_kind_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="CONNECTIVE_RATE_LIMITER"):
        limiter_from_settings(_settings(CONNECTIVE_RATE_LIMITER="redis"), "k")
