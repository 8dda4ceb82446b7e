"""What one maintenance run may spend: wall time, and a share of the connection's call budget.

The share is a sliding-window limiter of its own (share x N calls per window), held once per process
and connection, so runs that follow each other closely still stay within it. A run waits for its
own tokens only while its time budget lasts: that wait takes nothing from intake or callbacks. The
connection's limiter still applies on top (the client waits only briefly for it), so when intake is
busy the timer yields and the next tick resumes.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

from shared.config import Settings
from shared.connective.ratelimit import LocalRateLimiter, RateLimitDeferred, RateLimiter, connection_key

_share_limiters: dict[tuple[str, int, float], RateLimiter] = {}
_share_lock = threading.Lock()


class OutOfTime(Exception):
    """The run's time budget is spent; work not started stays due for the next tick."""


def share_limiter(settings: Settings) -> RateLimiter:
    """The process-wide limiter of the timer's share of the configured connection's budget."""
    calls = max(1, math.floor(settings.maintenance_rate_share * settings.connective_rate_calls))
    window_s = settings.connective_rate_window_s
    key = (connection_key(settings.connective_base_url, settings.connective_username or ""), calls,
           window_s)
    with _share_lock:
        limiter = _share_limiters.get(key)
        if limiter is None:
            limiter = LocalRateLimiter(calls, window_s, settings.connective_rate_latency_margin_s)
            _share_limiters[key] = limiter
        return limiter


class RunBudget:
    def __init__(self, time_budget_s: float, limiter: RateLimiter,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._deadline = monotonic() + max(0.0, time_budget_s)
        self._limiter = limiter
        self._lock = threading.Lock()
        self.calls = 0

    @classmethod
    def from_settings(cls, settings: Settings) -> RunBudget:
        return cls(settings.maintenance_time_budget_s, share_limiter(settings))

    def time_left_s(self) -> float:
        return max(0.0, self._deadline - self._monotonic())

    def check_time(self) -> None:
        if self.time_left_s() <= 0:
            raise OutOfTime("the run's time budget is spent")

    def take_call(self) -> None:
        """One Connective call from the timer's share. Raises `RateLimitDeferred` when the share has no
        token before the time budget ends, `OutOfTime` when that budget is already gone."""
        self.check_time()
        self._limiter.acquire(self.time_left_s())
        self.check_time()
        with self._lock:
            self.calls += 1


__all__ = ["OutOfTime", "RateLimitDeferred", "RunBudget", "share_limiter"]
