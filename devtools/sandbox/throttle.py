"""Per-user throttle: at most N calls in ANY sliding window of W seconds (a sliding log).

Written by hand because the rule is the contract other parts test against: a token bucket
would allow bursts the real gateway refuses. Throttled calls are not recorded.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable


class SlidingWindowThrottle:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._logs: dict[str, deque[float]] = {}
        self._lock = threading.Lock()
        self._clock = clock

    def try_acquire(self, user: str, calls: int, window_s: float) -> float | None:
        """Record a call and return None, or return the seconds to wait when the budget is spent."""
        if calls <= 0:
            return None
        now = self._clock()
        with self._lock:
            log = self._logs.setdefault(user, deque())
            while log and log[0] <= now - window_s:
                log.popleft()
            if len(log) >= calls:
                return max(log[len(log) - calls] + window_s - now, 0.001)
            log.append(now)
            return None

    def reset(self) -> None:
        with self._lock:
            self._logs.clear()


def retry_after_header(wait_s: float) -> str:
    return str(max(1, math.ceil(wait_s)))
