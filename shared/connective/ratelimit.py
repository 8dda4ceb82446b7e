"""Rate limiting for one Connective connection (base URL + user).

The connector gateway refuses (429) more than N calls in ANY sliding window of W seconds per
user. The budget belongs to the connection, not to the process: Azure Functions scales out, so
an in-process limiter alone multiplies the budget by the number of instances. Hence two limiters
behind one interface:

- `LocalRateLimiter`: one process (local runs, a single instance).
- `shared.connective.table_ratelimit.TableRateLimiter`: every instance of the app, with the
  state in the Table `RateLimits`.

`limiter_from_settings` picks one from `CONNECTIVE_RATE_LIMITER` and hands out one instance per
connection per process, so every client of a connection in a process shares one budget.

The gateway counts arrival times, which come a little after the token is granted. Both limiters
therefore space the (N+1)-th call at least W + latency margin after the first one.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

from shared.config import Settings

LOCAL = "local"
TABLE = "table"


class RateLimitDeferred(Exception):
    """No rate token within the allowed wait; nothing was sent. Come back in `retry_after_s` seconds."""

    def __init__(self, retry_after_s: float, reason: str = "no rate token within the allowed wait") -> None:
        self.retry_after_s = max(0.0, float(retry_after_s))
        super().__init__(f"{reason}; retry in {self.retry_after_s:.2f} s")


class RateLimiterUnavailable(RateLimitDeferred):
    """The shared limiter's state cannot be read or written, so no token can be granted safely."""


class RateLimiter(Protocol):
    def acquire(self, max_wait_s: float) -> None:
        """Take one token, waiting at most `max_wait_s` seconds.

        Raises `RateLimitDeferred` at once (without sleeping) when the wait is known to be longer.
        """
        ...


def _check_budget(calls: int, window_s: float, latency_margin_s: float) -> None:
    if calls < 1:
        raise ValueError(f"rate budget must allow at least one call, got {calls}")
    if window_s <= 0:
        raise ValueError(f"rate window must be positive, got {window_s}")
    if latency_margin_s < 0:
        raise ValueError(f"latency margin must not be negative, got {latency_margin_s}")


class LocalRateLimiter:
    """Sliding log of grant times, in one process.

    A waiting caller reserves its slot under the lock and sleeps outside it, so callers are
    served in arrival order and nobody wakes up only to find the slot taken.
    """

    def __init__(
        self,
        calls: int,
        window_s: float,
        latency_margin_s: float = 0.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        _check_budget(calls, window_s, latency_margin_s)
        self.calls = calls
        self.window_s = window_s
        self._spacing_s = window_s + latency_margin_s
        # Grant times (some possibly reserved in the near future) of the last `calls` grants.
        self._grants: deque[float] = deque(maxlen=calls)
        self._lock = threading.Lock()
        self._clock = clock
        self._sleep = sleep

    def acquire(self, max_wait_s: float) -> None:
        with self._lock:
            now = self._clock()
            slot = now
            if len(self._grants) == self.calls:
                slot = max(now, self._grants[0] + self._spacing_s)
            wait_s = slot - now
            if wait_s > max_wait_s:
                raise RateLimitDeferred(wait_s)
            self._grants.append(slot)
        if wait_s > 0:
            self._sleep(wait_s)


def connection_key(base_url: str, username: str) -> str:
    """Identifies a connection's budget: the gateway counts per user of one endpoint."""
    return f"{base_url.rstrip('/')}|{username}"


_registry: dict[tuple[object, ...], RateLimiter] = {}
_registry_lock = threading.Lock()


def limiter_from_settings(settings: Settings, connection_key: str) -> RateLimiter:
    """The limiter of a connection, one per connection (and budget) per process."""
    kind = settings.get("CONNECTIVE_RATE_LIMITER").strip().lower()
    calls = settings.get_int("CONNECTIVE_RATE_CALLS")
    window_s = settings.get_float("CONNECTIVE_RATE_WINDOW_S")
    latency_margin_s = settings.get_float("CONNECTIVE_RATE_LATENCY_MARGIN_S")
    if kind not in (LOCAL, TABLE):
        raise ValueError(f"CONNECTIVE_RATE_LIMITER must be `{LOCAL}` or `{TABLE}`, got {kind!r}")
    key = (kind, connection_key, calls, window_s, latency_margin_s)
    with _registry_lock:
        limiter = _registry.get(key)
        if limiter is None:
            if kind == LOCAL:
                limiter = LocalRateLimiter(calls, window_s, latency_margin_s)
            else:
                # Imported here so local runs never load the storage SDK for the limiter.
                from shared.connective.table_ratelimit import table_limiter_from_settings

                limiter = table_limiter_from_settings(settings, connection_key, calls, window_s, latency_margin_s)
            _registry[key] = limiter
        return limiter
