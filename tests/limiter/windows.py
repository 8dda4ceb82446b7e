"""Measures over recorded grant times, shared by the limiter tests and bench/saturation.py."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Sequence


def most_in_any_window(times: Iterable[float], window_s: float) -> int:
    """The largest number of times inside any half-open window [t - window_s, t], as the gateway counts."""
    ordered = sorted(times)
    first = 0
    most = 0
    for last, moment in enumerate(ordered):
        while ordered[first] <= moment - window_s:
            first += 1
        most = max(most, last - first + 1)
    return most


def window_fill(times: Sequence[float], start: float, end: float, calls: int, window_s: float,
                samples: int = 2000) -> float:
    """Mean share of the budget used by the sliding window ending at t, for t in [start, end].

    Unlike "calls / (budget x windows)", it does not depend on where the bursts of a limiter fall
    relative to the ends of a short run; over whole periods the two agree.
    """
    ordered = sorted(times)
    total = 0
    for index in range(samples):
        moment = start + (end - start) * index / (samples - 1)
        total += bisect_left(ordered, moment) - bisect_left(ordered, moment - window_s)
    return total / samples / calls
