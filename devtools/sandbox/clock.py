"""The sandbox clock: real UTC time plus an offset that tests move forward."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta


class SandboxClock:
    def __init__(self) -> None:
        self._offset = timedelta(0)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return datetime.now(UTC) + self._offset

    def advance(self, seconds: float) -> datetime:
        if seconds < 0:
            raise ValueError("the sandbox clock never moves backwards")
        with self._lock:
            self._offset += timedelta(seconds=seconds)
        return self.now()

    def set(self, moment: datetime) -> datetime:
        """Jump to a moment (not earlier than now)."""
        with self._lock:
            real = datetime.now(UTC)
            if moment < real + self._offset:
                raise ValueError("the sandbox clock never moves backwards")
            self._offset = moment - real
        return self.now()

    def reset(self) -> None:
        with self._lock:
            self._offset = timedelta(0)

    @property
    def offset_seconds(self) -> float:
        with self._lock:
            return self._offset.total_seconds()


def parse_timestamp(text: str) -> datetime:
    """ISO-8601 with a zone (`Z` or an offset); a naive value counts as UTC. Raises ValueError."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("empty timestamp")
    moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def iso_z(moment: datetime | None) -> str | None:
    """`2019-10-23T13:34:12Z`, the form of status responses."""
    if moment is None:
        return None
    return moment.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")
