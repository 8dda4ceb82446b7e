"""Process-wide service objects for function invocations: settings, storage and the Connective client.

Functions call these on every invocation; the objects behind them are built once per process (per
settings), so HTTP connections stay pooled and the rate limiter's state is shared by every
invocation of a worker.
"""

from __future__ import annotations

from shared.config import Settings
from shared.connection import connective_client
from shared.connective.client import ConnectiveClient
from shared.storage.store import Store, shared_store


def settings() -> Settings:
    return Settings.current()


def store(current: Settings | None = None) -> Store:
    return shared_store(current or settings())


def connective(current: Settings | None = None, rate_wait_s: float | None = None) -> ConnectiveClient:
    """The client of the configured connection; `rate_wait_s` bounds the wait for a rate token."""
    client = connective_client(current or settings())
    return client if rate_wait_s is None else client.with_rate_wait(rate_wait_s)


def queue_connective(current: Settings | None = None) -> ConnectiveClient:
    """The client for queue-triggered work: a short rate wait (QUEUE_RATE_WAIT_S), then RateLimitDeferred."""
    current = current or settings()
    return connective(current, current.queue_rate_wait_s)
