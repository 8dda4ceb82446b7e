"""Delivering one webhook event to one subscriber: sign, POST, and retry or dead-letter.

Each `webhook-events` message is one attempt. A failed attempt (an error, a timeout or a status
other than 2xx) puts a new message on the queue with the next attempt number and a visibility
delay that doubles each time (with jitter, so subscribers that come back are not hit by every
retry at once), and the trigger returns normally: the host's own retries and poison queue are
kept for failures of this code, not of the subscriber. After WEBHOOK_MAX_ATTEMPTS attempts the
event goes to the `WebhookDeadLetters` table with the last error.

A 410 Gone answer means the receiver dropped the subscription: it is removed and nothing is retried.
"""

from __future__ import annotations

import json
import logging
import math
import random
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

import requests

from shared.config import Settings
from shared.connective.retry import retry_after_s
from shared.logging import get_logger, log_event, package_scope
from shared.storage import names
from shared.storage.store import Store
from shared.telemetry import TRACEPARENT, SpanKind, current_span, mark_error, package_step, webhook_deliveries
from shared.webhooks.events import WebhookEvent
from shared.webhooks.publish import delivery_message, subscriptions
from shared.webhooks.signing import EVENT_TYPE_HEADER, signed_headers
from shared.webhooks.ssrf import UnsafeUrlError, UrlPolicy, check_url, guarded_session
from shared.webhooks.subscriptions import Subscription

CONNECT_TIMEOUT_S = 5
READ_TIMEOUT_S = 10

_log = get_logger(__name__)


class Outcome(StrEnum):
    DELIVERED = "delivered"
    RETRY_SCHEDULED = "retry_scheduled"
    DEAD_LETTERED = "dead_lettered"
    DROPPED = "dropped"  # the subscription no longer exists (or the receiver said 410 Gone)


@dataclass(frozen=True)
class DeliveryResult:
    outcome: Outcome
    attempt: int
    status_code: int | None = None
    error: str | None = None
    retry_delay_s: int | None = None


def url_policy(settings: Settings) -> UrlPolicy:
    return UrlPolicy(allow_loopback=settings.webhook_allow_loopback)


_sessions: dict[UrlPolicy, requests.Session] = {}
_sessions_lock = threading.Lock()


def _session(policy: UrlPolicy) -> requests.Session:
    with _sessions_lock:
        if policy not in _sessions:
            _sessions[policy] = guarded_session(policy)
        return _sessions[policy]


def retry_delay_s(settings: Settings, failed_attempt: int, retry_after_s: int | None = None) -> int:
    """Seconds before the next attempt: base * 2^(attempt-1), capped, ±20 % jitter; at least the
    receiver's own Retry-After."""
    base = settings.webhook_retry_base_s
    cap = settings.webhook_retry_max_s
    delay = min(cap, base * 2 ** (failed_attempt - 1) * random.uniform(0.8, 1.2))
    if retry_after_s is not None:
        delay = max(delay, min(cap, retry_after_s))
    return max(0, round(delay))


def _signed_request(settings: Settings, event: WebhookEvent) -> tuple[bytes, dict[str, str]]:
    secrets = settings.require(settings.webhook_signing_secret, "WEBHOOK_SIGNING_SECRET")
    body = event.body()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "connective-signing-functions-webhooks/1",
        **signed_headers([secret.get_secret_value() for secret in secrets], event.id, int(time.time()), body),
        EVENT_TYPE_HEADER: event.type.value,
    }
    return body, headers


def _retry_after(response: requests.Response) -> int | None:
    """The receiver's Retry-After, in seconds or as an HTTP date, rounded up."""
    seconds = retry_after_s(response.headers.get("Retry-After"))
    return None if seconds is None else math.ceil(seconds)


def _post(settings: Settings, url: str, event: WebhookEvent) -> tuple[int | None, str | None, int | None]:
    """POST the signed event. Returns (status code, error text, receiver's Retry-After)."""
    policy = url_policy(settings)
    try:
        check_url(url, policy)  # a clear refusal before connecting; the socket check repeats it
        body, headers = _signed_request(settings, event)
        response = _session(policy).post(url, data=body, headers=headers, allow_redirects=False,
                                         timeout=(CONNECT_TIMEOUT_S, READ_TIMEOUT_S))
    except UnsafeUrlError as error:
        return None, f"unsafe URL: {error}", None
    except requests.RequestException as error:
        # Only the kind of failure: requests' messages quote the URL, whose query may be a secret.
        return None, type(error).__name__, None
    with response:
        if 200 <= response.status_code < 300:
            return response.status_code, None, None
        return response.status_code, f"HTTP {response.status_code}", _retry_after(response)


def _dead_letter(store: Store, message: dict[str, Any], error: str) -> None:
    event = message["event"]
    store.clients.table(names.WEBHOOK_DEAD_LETTERS_TABLE).upsert_entity({
        "PartitionKey": message["subscriptionId"],
        "RowKey": event["id"],
        "EventType": event.get("type", ""),
        "PackageRef": event.get("packageRef", ""),
        "Attempts": int(message["attempt"]),
        "LastError": error,
        "EventJson": json.dumps(event, separators=(",", ":")),
        "DeadLetteredAt": datetime.now(UTC),
    })


def deliver(settings: Settings, store: Store, message: dict[str, Any]) -> DeliveryResult:
    """Make one delivery attempt for a `webhook-events` message (see `delivery_message`)."""
    event = WebhookEvent.model_validate(message["event"])
    attempt = int(message.get("attempt", 1))
    subscription_id = str(message["subscriptionId"])
    fields: dict[str, Any] = {"event_id": event.id, "event_type": event.type.value, "subscription_id": subscription_id,
              "attempt": attempt}
    with package_scope(event.package_ref), \
            package_step("webhook.delivery", event.package_ref, message.get(TRACEPARENT), kind=SpanKind.CONSUMER,
                         **{"webhook.event_type": event.type.value, "webhook.subscription_id": subscription_id,
                            "webhook.attempt": attempt}) as span:
        result = _deliver(settings, store, message, event, fields)
        span.set_attribute("webhook.outcome", result.outcome.value)
        if result.status_code is not None:
            span.set_attribute("http.response.status_code", result.status_code)
        if result.outcome is not Outcome.DELIVERED:
            mark_error(span, result.outcome.value)
        webhook_deliveries.add(1, {"outcome": result.outcome.value})
        return result


def _deliver(settings: Settings, store: Store, message: dict[str, Any], event: WebhookEvent,
             fields: dict[str, Any]) -> DeliveryResult:
    attempt, subscription_id = fields["attempt"], fields["subscription_id"]
    repository = subscriptions(store)
    subscription = repository.get(subscription_id, event.package_ref)
    if subscription is None and isinstance(message.get("subscription"), dict):
        # A package-scoped subscription removed after its package's last event: that event still goes out.
        subscription = Subscription.model_validate(message["subscription"])
    if subscription is None:
        log_event(_log, "webhook.dropped", reason="subscription removed", **fields)
        return DeliveryResult(Outcome.DROPPED, attempt)
    host = urlsplit(subscription.url).hostname
    current_span().set_attribute("server.address", host or "")  # the host only: a query may hold a signature
    status, error, retry_after = _post(settings, subscription.url, event)
    if error is None:
        log_event(_log, "webhook.delivered", status=status, host=host, **fields)
        return DeliveryResult(Outcome.DELIVERED, attempt, status)
    if status == 410:
        repository.remove(subscription_id, event.package_ref)
        log_event(_log, "webhook.dropped", reason="receiver answered 410 Gone", host=host, **fields)
        return DeliveryResult(Outcome.DROPPED, attempt, status, error)
    if attempt >= settings.webhook_max_attempts:
        _dead_letter(store, message, error)
        log_event(_log, "webhook.dead_lettered", logging.ERROR, status=status, error=error, host=host,
                  **fields)
        return DeliveryResult(Outcome.DEAD_LETTERED, attempt, status, error)
    delay = retry_delay_s(settings, attempt, retry_after)
    store.clients.send_json(names.WEBHOOK_EVENTS_QUEUE,
                            delivery_message(subscription_id, event, attempt + 1, subscription), delay_s=delay)
    log_event(_log, "webhook.retry_scheduled", logging.WARNING, status=status, error=error, host=host,
              delay_s=delay, **fields)
    return DeliveryResult(Outcome.RETRY_SCHEDULED, attempt, status, error, delay)
