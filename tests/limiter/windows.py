"""Measures over recorded grant times, shared by the limiter tests and the saturation benchmark."""

from __future__ import annotations

from collections.abc import Iterable


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


def budget_use(times: Iterable[float], start: float, duration_s: float, calls: int, window_s: float) -> float:
    """Share of the budget used in [start, start + duration_s): grants / (calls per window x windows)."""
    used = sum(1 for moment in times if start <= moment < start + duration_s)
    return used / (calls * duration_s / window_s)
