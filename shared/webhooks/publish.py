"""Publishing app events to webhook subscribers.

The pipeline calls `publish_event` when something a flow may wait for happens. Delivery is
asynchronous (one `webhook-events` message per matching subscriber), so a slow subscriber never
slows the pipeline, and each subscriber's retries are its own.

What `data` holds per event type (subscribers and the OpenAPI notification schema rely on it):
- STATUS_CHANGED: `status` (the new PackageStatus value), `previousStatus`; subscriptions may
  filter on `status` (the "When a package is signed" trigger waits for Finished).
- SIGNER_ACTED: `email`, `action` (signed, rejected, ...), `status` of the package.
- ARCHIVED: `archiveLocation` and `files`.
- INPUT_REJECTED: `reason`, `errorReport`.
- LINK_REQUESTED: `email` of the signer who asked for a new link.
"""

from __future__ import annotations

from typing import Any

from shared.logging import get_logger, log_event
from shared.storage import names
from shared.storage.store import Store
from shared.webhooks.events import EventType, WebhookEvent
from shared.webhooks.subscriptions import SubscriptionRepository

__all__ = ["EventType", "WebhookEvent", "delivery_message", "publish_event", "subscriptions"]

_log = get_logger(__name__)


def subscriptions(store: Store) -> SubscriptionRepository:
    return SubscriptionRepository(store.clients.table(names.SUBSCRIPTIONS_TABLE))


def delivery_message(subscription_id: str, event: WebhookEvent, attempt: int = 1) -> dict[str, Any]:
    """One `webhook-events` message: deliver `event` to one subscriber (attempt counts from 1)."""
    return {"subscriptionId": subscription_id, "attempt": attempt,
            "event": event.model_dump(mode="json", by_alias=True)}


def publish_event(store: Store, event_type: EventType, package_ref: str, data: dict[str, Any]) -> None:
    """Queue `event_type` for every subscriber that wants it. Never raises for delivery problems:
    the pipeline's own work has already happened and must not be retried because of a subscriber."""
    try:
        matching = subscriptions(store).matching(event_type, package_ref, data)
        if not matching:
            return
        event = WebhookEvent(type=event_type, packageRef=package_ref, data=data)
        for subscription in matching:
            store.clients.send_json(names.WEBHOOK_EVENTS_QUEUE, delivery_message(subscription.id, event))
        log_event(_log, "webhook.published", event_type=event_type.value, event_id=event.id,
                  subscribers=len(matching))
    except Exception:  # publishing is best effort for the caller, see the docstring
        _log.error("webhook.publish_failed", exc_info=True, extra={"fields": {"event_type": event_type.value}})
