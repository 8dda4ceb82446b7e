"""Pacing bulk sends by the rate budget.

A bulk package is created by the same `package-requests` queue and the same connection limiter as any
other package, so a job of any size never causes a 429. On top of that, the creation calls of bulk
packages draw from a share of the budget (`BULK_RATE_SHARE` x `CONNECTIVE_RATE_CALLS` per window),
held by a second limiter of the same kind as the connection's (in-process or in the `RateLimits`
table, so the share holds for the whole fleet). Whatever the size of a job, at least the rest of the
budget stays free for everything else: other packages, callbacks, archives (the job's own included).
When nothing else runs, the job's status reads and archives use that rest, so the budget is spent
in full.

The feeder (`shared.bulk.feeder`) releases rows into the queue no faster than the share can create
them, so the queue never holds more than about one window of bulk messages.
"""

from __future__ import annotations

import math
import threading
import time

from shared.config import Settings
from shared.connection import TABLE, connective_config, limiter_from_settings
from shared.connective.client import ConnectiveClient
from shared.connective.config import ConnectiveConfig
from shared.connective.ratelimit import LocalRateLimiter, Permit, RateLimitDeferred, RateLimiter

_clients: dict[tuple[object, ...], ConnectiveClient] = {}
_lock = threading.Lock()


def share_calls(settings: Settings) -> int:
    """Bulk creation calls allowed per window."""
    share = min(1.0, max(0.0, settings.bulk_rate_share))
    return max(1, math.floor(share * settings.connective_rate_calls))


class _ShareThenConnection:
    """A token of the bulk share first, then one of the connection; the wait bound covers both."""

    def __init__(self, share: RateLimiter, connection: RateLimiter) -> None:
        self._share = share
        self._connection = connection

    def acquire(self, max_wait_s: float) -> Permit:
        started = time.monotonic()
        # The share's permit only paces; the connection's permit is the one the transport checks on leaving.
        share = self._share.acquire(max_wait_s)
        try:
            return self._connection.acquire(max(0.0, max_wait_s - (time.monotonic() - started)))
        except RateLimitDeferred:
            # The creation goes back to its queue unsent: the share's token is not spent on it.
            share.withdraw()
            raise

    def pause(self, seconds: float) -> None:
        self._connection.pause(seconds)


def _share_limiter(settings: Settings, config: ConnectiveConfig) -> RateLimiter:
    calls = share_calls(settings)
    margin = settings.connective_rate_latency_margin_s
    if settings.connective_rate_limiter == TABLE:
        from shared.storage.ratelimit import table_limiter_from_settings

        return table_limiter_from_settings(settings, config.connection_key + "|bulk", calls,
                                           config.rate_window_s, margin)
    return LocalRateLimiter(calls, config.rate_window_s, margin)


def bulk_creation_client(settings: Settings) -> ConnectiveClient:
    """The client that creates bulk packages: the bulk share, then the connection's limiter; a short wait
    for a token (QUEUE_RATE_WAIT_S), after which the message goes back to the queue."""
    config = connective_config(settings)
    key = (config, settings.connective_rate_limiter, share_calls(settings))
    with _lock:
        client = _clients.get(key)
        if client is None:
            connection = limiter_from_settings(settings, config.connection_key)
            client = ConnectiveClient(config, _ShareThenConnection(_share_limiter(settings, config), connection))
            _clients[key] = client
    return client.with_rate_wait(settings.queue_rate_wait_s)


def creation_calls_per_package(documents: int) -> int:
    """Connective calls that create one package: Create Instant Package, or create + adds + process + status."""
    return 1 if documents <= 1 else documents + 3


def calls_per_package(documents: int) -> int:
    """Every call of one package through to its archive (docs/ARCHITECTURE.md, call budget per package)."""
    return 4 if documents <= 1 else documents + 6
