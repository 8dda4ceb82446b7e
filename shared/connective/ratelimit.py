"""Rate limiting for one Connective connection (base URL + user).

The connector gateway refuses (429) more than N calls in ANY sliding window of W seconds per
user. The budget belongs to the connection, not to the process: Azure Functions scales out, so
an in-process limiter alone multiplies the budget by the number of instances. Hence two limiters
behind one interface:

- `LocalRateLimiter`: one process (local runs, a single instance).
- `shared.storage.ratelimit.TableRateLimiter`: every instance of the app, with the state in the
  Table `RateLimits` (it lives with the storage code: the client knows no storage).

`connection_limiter` hands out one limiter per connection and budget per process, whoever asks:
a client built from its config alone and one the app builds from settings (which injects the
limiter `CONNECTIVE_RATE_LIMITER` chooses) share one budget.

The gateway counts arrival times, which come after the token is granted: first the time until the
request leaves the process (a busy worker, a GC pause, preparing the body), then the trip to the
gateway. A limiter's bound can only hold if the first part is bounded, and on a busy instance it
is not by itself. So a grant is a `Permit` with a deadline: the transport re-checks it immediately
before the request goes out (`Permit.leave`), and a permit past its deadline is void: the request
is not sent, the permit's room goes back to the limiter, and the transport takes a new permit. The
calls that do leave therefore leave within `send_allowance_s` of the time the limiter counted
them at, and each limiter keeps the (N+1)-th call at least W + send allowance + latency margin
after the first one, the latency margin covering only the trip from leaving to arriving.
docs/ARCHITECTURE.md ("One rate budget for the fleet") gives the whole argument.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Callable
from typing import Protocol

# The limiters' errors belong to the client's one error tree; imported here for the limiters' users.
from shared.connective.errors import RateLimitDeferred, RateLimiterUnavailable

__all__ = ["DEFAULT_SEND_ALLOWANCE_S", "BudgetKey", "LocalRateLimiter", "Permit", "RateLimitDeferred",
           "RateLimiter", "RateLimiterUnavailable", "connection_key", "connection_limiter"]

# Seconds a permit may take from the time its limiter counts it at to leaving the process. Past it the
# permit is void and the request is not sent. Short against the window, long against the code path from
# `acquire` to the socket (well under a millisecond on an idle worker, tens on a loaded one).
DEFAULT_SEND_ALLOWANCE_S = 0.05


class Permit:
    """The right to send one call, if it leaves by `send_by` (on the limiter's clock).

    `leave()` is called immediately before the request is written. A permit nobody calls `leave()`
    on counts as sent at any time up to its deadline: callers that only pace themselves with
    `acquire` (and send through a transport that takes permits of its own) stay correct.
    """

    __slots__ = ("_clock", "_release", "_state", "counted_at", "delay_s", "send_by")

    def __init__(self, counted_at: float, send_by: float, clock: Callable[[], float],
                 release: Callable[[], None] | None = None) -> None:
        self.counted_at = counted_at
        self.send_by = send_by
        self.delay_s: float | None = None  # from `counted_at` to `leave()`, once left or voided
        self._clock = clock
        self._release = release
        self._state = "granted"

    def leave(self) -> bool:
        """True: the request may go now. False: the permit is too late and void; do not send, take another."""
        if self._state != "granted":
            raise RuntimeError(f"a permit is used once (this one is {self._state})")
        now = self._clock()
        self.delay_s = max(0.0, now - self.counted_at)
        if now <= self.send_by:
            self._state = "sent"
            return True
        self.withdraw()
        return False

    def withdraw(self) -> None:
        """No call will be made under this permit after all: it is void, and its room goes back to the limiter."""
        if self._state == "granted":
            self._state = "void"
            if self._release is not None:
                self._release()


class RateLimiter(Protocol):
    def acquire(self, max_wait_s: float) -> Permit:
        """Take one token, waiting at most `max_wait_s` seconds.

        Raises `RateLimitDeferred` at once (without sleeping) when the wait is known to be longer.
        """
        ...

    def pause(self, seconds: float) -> None:
        """The gateway answered 429 with Retry-After: grant nothing in this process for `seconds`."""
        ...


def _check_budget(calls: int, window_s: float, latency_margin_s: float, send_allowance_s: float = 0.0) -> None:
    if send_allowance_s < 0:
        raise ValueError(f"send allowance must not be negative, got {send_allowance_s}")
    if calls < 1:
        raise ValueError(f"rate budget must allow at least one call, got {calls}")
    if window_s <= 0:
        raise ValueError(f"rate window must be positive, got {window_s}")
    if latency_margin_s < 0:
        raise ValueError(f"latency margin must not be negative, got {latency_margin_s}")


class LocalRateLimiter:
    """Sliding log of the times calls are counted at, in one process.

    A waiting caller reserves its slot under the lock and sleeps outside it, so callers are
    served in arrival order and nobody wakes up only to find the slot taken. A permit voided for
    leaving late takes its slot out of the log again: that call never reaches the gateway.

    Why the rule holds: the log is kept sorted, and a new slot t is at least the N-th latest
    entry + W + send allowance + latency margin, so any window of that length holding t holds at
    most N - 1 other entries (all later than that N-th latest one). Removing entries (void
    permits, or entries older than that length before now) never adds a call to any window. A
    call that leaves does so by its slot + send allowance and arrives within the latency margin
    after, so arrivals keep N per window W.
    """

    def __init__(
        self,
        calls: int,
        window_s: float,
        latency_margin_s: float = 0.0,
        *,
        send_allowance_s: float = DEFAULT_SEND_ALLOWANCE_S,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        _check_budget(calls, window_s, latency_margin_s, send_allowance_s)
        self.calls = calls
        self.window_s = window_s
        self.send_allowance_s = send_allowance_s
        self._spacing_s = window_s + send_allowance_s + latency_margin_s
        # Sorted times at which calls are counted (some reserved in the near future).
        self._slots: list[float] = []
        self._paused_until = float("-inf")
        self._lock = threading.Lock()
        self._clock = clock
        self._sleep = sleep

    def acquire(self, max_wait_s: float) -> Permit:
        with self._lock:
            now = self._clock()
            del self._slots[:bisect.bisect_right(self._slots, now - self._spacing_s)]
            slot = max(now, self._paused_until)
            if len(self._slots) >= self.calls:
                slot = max(slot, self._slots[-self.calls] + self._spacing_s)
            wait_s = slot - now
            if wait_s > max_wait_s:
                raise RateLimitDeferred(wait_s)
            bisect.insort(self._slots, slot)
        if wait_s > 0:
            self._sleep(wait_s)
        return Permit(slot, slot + self.send_allowance_s, self._clock, lambda: self._release(slot))

    def _release(self, slot: float) -> None:
        with self._lock:
            index = bisect.bisect_left(self._slots, slot)
            if index < len(self._slots) and self._slots[index] == slot:
                del self._slots[index]

    def pause(self, seconds: float) -> None:
        with self._lock:
            self._paused_until = max(self._paused_until, self._clock() + max(0.0, seconds))


def connection_key(base_url: str, username: str) -> str:
    """Identifies a connection's budget: the gateway counts per user of one endpoint."""
    return f"{base_url.rstrip('/')}|{username}"


BudgetKey = tuple[str, int, float, float]
"""A connection's key (`connection_key`) with its budget: calls, window and latency margin."""

_limiters: dict[BudgetKey, RateLimiter] = {}
_limiters_lock = threading.Lock()


def connection_limiter(budget: BudgetKey, build: Callable[[], RateLimiter] | None = None) -> RateLimiter:
    """The one limiter of a connection and budget in this process.

    The first caller's limiter (from `build`, else a `LocalRateLimiter` of the budget) serves every
    later caller, however its client is built: two limiters for one connection would be twice the
    gateway's limit.
    """
    with _limiters_lock:
        limiter = _limiters.get(budget)
        if limiter is None:
            _, calls, window_s, latency_margin_s = budget
            limiter = build() if build is not None else LocalRateLimiter(calls, window_s, latency_margin_s)
            _limiters[budget] = limiter
        return limiter
