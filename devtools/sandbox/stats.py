"""Counters for /_sandbox/stats: calls per operation, user and package, throttling, faults, callbacks.

`GET /_sandbox/stats?times=1` adds the wall-clock times (epoch seconds) at which the throttle
accepted each user's calls, the last `ACCEPTED_TIMES_KEPT` per user: benchmarks measure how full
the sliding window was from them.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from typing import Any

ACCEPTED_TIMES_KEPT = 50_000


class Stats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.calls_by_operation: Counter[str] = Counter()
            self.calls_by_user: Counter[str] = Counter()
            self.calls_by_package: Counter[str] = Counter()
            self.calls_by_reference: Counter[str] = Counter()
            self.status_codes: Counter[str] = Counter()
            self.throttled_by_user: Counter[str] = Counter()
            self.faults: Counter[str] = Counter()
            self.callbacks: Counter[str] = Counter()
            self.reminders_by_package: Counter[str] = Counter()
            # Seconds spent on requests that carried documents, once received (PDF check, hash, filing), by
            # package: Connective's own work on an upload, which the benchmarks keep apart from the app's time.
            self.upload_handling_s_by_package: dict[str, float] = {}
            self.unauthorized = 0
            self.accepted_times_by_user: dict[str, deque[float]] = {}

    def record_accepted(self, user: str) -> None:
        """A call passed the throttle: it counts against the user's window from now on."""
        at = time.time()
        with self._lock:
            times = self.accepted_times_by_user.setdefault(user, deque(maxlen=ACCEPTED_TIMES_KEPT))
            times.append(at)

    def record_call(self, operation: str, user: str, package_id: str | None, reference: str | None) -> None:
        with self._lock:
            self.calls_by_operation[operation] += 1
            self.calls_by_user[user] += 1
            if package_id:
                self.calls_by_package[package_id] += 1
            if reference:
                self.calls_by_reference[reference] += 1

    def record_status(self, status: int) -> None:
        with self._lock:
            self.status_codes[str(status)] += 1

    def record_throttled(self, user: str) -> None:
        with self._lock:
            self.throttled_by_user[user] += 1

    def record_unauthorized(self) -> None:
        with self._lock:
            self.unauthorized += 1

    def record_fault(self, kind: str) -> None:
        with self._lock:
            self.faults[kind] += 1

    def record_callback(self, outcome: str) -> None:
        with self._lock:
            self.callbacks[outcome] += 1

    def record_reminder(self, package_id: str) -> None:
        with self._lock:
            self.reminders_by_package[package_id] += 1

    def record_upload_handling(self, package_id: str, seconds: float) -> None:
        with self._lock:
            handled = self.upload_handling_s_by_package
            handled[package_id] = handled.get(package_id, 0.0) + seconds

    def accepted_times(self) -> dict[str, list[float]]:
        with self._lock:
            return {user: list(times) for user, times in self.accepted_times_by_user.items()}

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "calls_total": sum(self.calls_by_operation.values()),
                "calls_by_operation": dict(self.calls_by_operation),
                "calls_by_user": dict(self.calls_by_user),
                "calls_by_package": dict(self.calls_by_package),
                "calls_by_external_reference": dict(self.calls_by_reference),
                "status_codes": dict(self.status_codes),
                "throttled": sum(self.throttled_by_user.values()),
                "throttled_by_user": dict(self.throttled_by_user),
                "unauthorized": self.unauthorized,
                "faults": {kind: self.faults.get(kind, 0) for kind in ("500", "503", "hang", "latency")},
                "callbacks": {kind: self.callbacks.get(kind, 0) for kind in
                              ("queued", "sent", "failed_attempts", "failed", "dropped", "duplicated", "reordered",
                               "notifications_sent")},
                "reminders_by_package": dict(self.reminders_by_package),
                "upload_handling_s_by_package": {package: round(seconds, 4) for package, seconds
                                                 in self.upload_handling_s_by_package.items()},
            }
