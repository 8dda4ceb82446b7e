"""When a failed attempt is tried again, and after how long.

The retry loop is written here rather than with urllib3's `Retry`, because `Retry` can express
neither rule this client lives by: a request that may have reached Connective is repeated only when
the operation is safe to repeat (otherwise the caller gets an "ambiguous" error), and every attempt
first takes a token from the connection's rate limiter.
"""

from __future__ import annotations

import enum
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import requests
import urllib3.exceptions

from shared.connective.config import RetryConfig
from shared.connective.operations import Replay


class Verdict(enum.Enum):
    RETRY = "retry"          # try again after a delay
    AMBIGUOUS = "ambiguous"  # stop: the call may have been applied, and it must not be repeated blindly
    FAIL = "fail"            # stop: the error is the answer


# 429 and 503 say the request was not processed; every operation may repeat it.
_NOT_PROCESSED_STATUSES = frozenset({429, 503})
# A gateway or server failure after the request arrived: maybe processed, maybe not.
_MAYBE_PROCESSED_STATUSES = frozenset({500, 502, 504})
_TRANSIENT_STATUSES = frozenset({502, 503, 504})


def request_was_sent(exc: requests.RequestException) -> bool:
    """False only when the connection never came up, so not a byte of the request left the process."""
    if isinstance(exc, requests.exceptions.ConnectTimeout | requests.exceptions.SSLError):
        return False
    if isinstance(exc, requests.exceptions.ConnectionError):
        reason = exc.args[0] if exc.args else None
        if isinstance(reason, urllib3.exceptions.MaxRetryError):
            reason = reason.reason
        return not isinstance(reason, urllib3.exceptions.NewConnectionError | urllib3.exceptions.ConnectTimeoutError)
    return True


def retry_after_s(header: str | None, now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> float | None:
    """Retry-After as seconds: either delta-seconds or an HTTP date."""
    if not header:
        return None
    header = header.strip()
    try:
        return max(0.0, float(header))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now()).total_seconds())


@dataclass
class RetryPolicy:
    config: RetryConfig
    random_fraction: Callable[[], float] = field(default=random.random)

    def backoff_s(self, retry_number: int) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2**(retry_number - 1))]."""
        ceiling = min(self.config.backoff_cap_s, self.config.backoff_base_s * 2 ** max(0, retry_number - 1))
        return ceiling * self.random_fraction()

    def for_status(self, status: int, replay: Replay) -> Verdict:
        if status in _NOT_PROCESSED_STATUSES:
            return Verdict.RETRY
        if status in _MAYBE_PROCESSED_STATUSES and replay is not Replay.SAFE:
            return Verdict.AMBIGUOUS
        if status in _TRANSIENT_STATUSES:
            return Verdict.RETRY
        return Verdict.FAIL

    def for_exception(self, sent: bool, replay: Replay) -> Verdict:
        if not sent or replay is Replay.SAFE:
            return Verdict.RETRY
        return Verdict.AMBIGUOUS


class Clock:
    """Time source of the retry loop; tests replace it to run retries without sleeping."""

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)
