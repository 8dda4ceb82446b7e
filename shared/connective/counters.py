"""Counts of the client's rate-limit events, for whatever exports metrics.

The client knows nothing of the telemetry in use: an exporter subscribes a listener (for example
one that adds to an OpenTelemetry counter) and receives every event as it is counted. The totals
are kept here as well, for benchmarks, tests and a quick look in a debugger.

- `connective.throttled`: a 429 from the gateway (its Retry-After was honoured).
- `connective.late_permit`: a rate permit that expired before its request could leave the process;
  the request was not sent and a new permit was taken.
"""

from __future__ import annotations

import contextlib
import threading
from collections import Counter
from collections.abc import Callable

THROTTLED = "connective.throttled"
LATE_PERMIT = "connective.late_permit"

Listener = Callable[[str, dict[str, str]], None]

_totals: Counter[str] = Counter()
_listeners: list[Listener] = []
_lock = threading.Lock()


def count(name: str, **attributes: str) -> None:
    """One event; listeners are called outside the lock, and one that fails does not stop the call."""
    with _lock:
        _totals[name] += 1
        listeners = list(_listeners)
    for listener in listeners:
        # A metric exporter's failure must never fail a Connective call.
        with contextlib.suppress(Exception):
            listener(name, attributes)


def subscribe(listener: Listener) -> Callable[[], None]:
    """Call `listener(name, attributes)` for every event from now on; returns the function that stops it."""
    with _lock:
        _listeners.append(listener)

    def unsubscribe() -> None:
        with _lock:
            if listener in _listeners:
                _listeners.remove(listener)

    return unsubscribe


def totals() -> dict[str, int]:
    """Events counted in this process so far, by name."""
    with _lock:
        return dict(_totals)
