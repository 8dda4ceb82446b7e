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


def most_surely_in_any_window(spans: Iterable[Sequence[float]], window_s: float) -> int:
    """`most_in_any_window` for moments known only to lie within [before, after] spans.

    Counts, for every window [t - window_s, t], the spans that lie wholly inside it: those moments
    are in that window whatever they were exactly. A wide span (its process was descheduled) is
    counted in fewer windows, never in a wrong one, so the count holds on a loaded machine.
    """
    ordered = sorted((float(before), float(after)) for before, after in spans)
    most = 0
    for _, end in ordered:
        inside = sum(1 for before, after in ordered if after <= end and before > end - window_s)
        most = max(most, inside)
    return most
