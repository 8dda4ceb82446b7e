"""The composition point of every trigger: its settings, storage and Connective client, and the shape of
each kind of invocation (a blob, timer or HTTP call; a queue message; a queue message about one package).

The objects behind `Services` are built once per process (per settings), so HTTP connections stay
pooled and the rate limiter's state is shared by every invocation of a worker. A trigger module binds
its trigger to one of `on_invocation`, `on_message` or `on_package_message` and hands the work to the
module that does it; nothing else is composed in `functions/`.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from functools import cached_property
from typing import Any, TypeVar

import azure.functions as func

from shared.config import Settings
from shared.connection import connective_client
from shared.connective.client import ConnectiveClient
from shared.logging import package_scope
from shared.messages import PackageMessage, QueueMessageModel, read_message
from shared.storage.store import Store, shared_store
from shared.telemetry import SpanKind, invocation, package_step

T = TypeVar("T")
Message = dict[str, Any]


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


class Services:
    """What one invocation works with. Storage and clients are made on first use: a callback refused
    before anything is read builds neither."""

    def __init__(self, current: Settings) -> None:
        self.settings = current

    @cached_property
    def store(self) -> Store:
        return store(self.settings)

    def connective(self, rate_wait_s: float | None = None) -> ConnectiveClient:
        return connective(self.settings, rate_wait_s)

    def queue_connective(self) -> ConnectiveClient:
        return queue_connective(self.settings)

    def creation_client(self, ref: str) -> ConnectiveClient:
        """The client that creates package `ref`: a bulk send's package also draws from the bulk share of
        the budget (shared.bulk.pacing), any other one from the connection's alone."""
        from shared.bulk import pacing
        from shared.bulk.spec import is_bulk_package_ref

        return pacing.bulk_creation_client(self.settings) if is_bulk_package_ref(ref) else self.queue_connective()


def on_invocation(context: func.Context | None, work: Callable[[Services], T], *,
                  package_ref: str | None = None) -> T:
    """A blob, timer or HTTP invocation: `work` runs inside the invocation's telemetry (and the package's
    log scope, when the trigger names one)."""
    with invocation(context), package_scope(package_ref) if package_ref is not None else nullcontext():
        return work(Services(settings()))


def on_message(message: func.QueueMessage, context: func.Context | None, model: type[QueueMessageModel],
               queue: str, work: Callable[[Services, Message], object]) -> None:
    """A queue message, checked with its model first: a malformed one is logged with the reason and
    dropped (the invocation succeeds, so the host neither retries it nor sends it to the poison queue)."""
    with invocation(context):
        payload = read_message(message.get_body(), model, queue, message.id)
        if payload is not None:
            work(Services(settings()), payload)


def on_package_message(message: func.QueueMessage, context: func.Context | None, queue: str, step: str,
                       work: Callable[[Services, Message], object]) -> None:
    """A queue message about one package: the work runs in the package's log scope and in a consumer span
    `step` that continues the trace the message carries."""
    def in_package(services: Services, payload: Message) -> None:
        ref = payload["packageRef"]
        with package_scope(ref), package_step(step, ref, payload.get("traceparent"), kind=SpanKind.CONSUMER):
            work(services, payload)

    on_message(message, context, PackageMessage, queue, in_package)
