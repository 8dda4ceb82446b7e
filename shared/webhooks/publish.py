"""Publishing app events to webhook subscribers.

The pipeline calls `publish_event` when something a flow may wait for happens. Delivery is
asynchronous (one `webhook-events` message per matching subscriber), so a slow subscriber never
slows the pipeline, and each subscriber's retries are its own.

What `data` holds per event type (subscribers and the connector's trigger outputs rely on it; the
models are `shared.webhooks.events.EVENT_DATA`, and fields without a value are left out):
- STATUS_CHANGED: `status` (the new PackageStatus value), `previousStatus`, `reason`;
  subscriptions may filter on `status` (the "When a package is signed" trigger waits for Finished).
- SIGNER_ACTED: `email`, `actorId`, `action` (signed, rejected, ...), `completedAt`, `reason`,
  `status` of the package.
- ARCHIVED: `archiveLocation` and `files`.
- INPUT_REJECTED: `packageRef`, `source`, `code`, `message`, `errorReport`.
- LINK_REQUESTED: `email` and `actorId` of the signer who asked for a new link, and `actionUrl`, the fresh
  signing link, only for subscriptions an operator created through the API: a subscriber named in a
  package request (by whoever uploaded it) never gets another person's signing link.
- BULK_COMPLETED: `bulkSend` (the job; `packageRef` holds it too), `state` (Completed or Cancelled),
  `packages`, `skipped`, `statuses` (counts) and `report` (the report.csv blob).
"""

from __future__ import annotations

from typing import Any

from shared.logging import get_logger, log_event
from shared.storage import names
from shared.storage.store import Store
from shared.webhooks.events import EventType, WebhookEvent
from shared.webhooks.subscriptions import Subscription, SubscriptionRepository, package_subscription

__all__ = ["EventType", "WebhookEvent", "delivery_message", "publish_event", "subscriptions"]

_log = get_logger(__name__)


def subscriptions(store: Store) -> SubscriptionRepository:
    return SubscriptionRepository(store.clients.table(names.SUBSCRIPTIONS_TABLE))


# Data only subscriptions an operator created may receive (a signing link opens another person's signing form).
OPERATOR_ONLY_DATA = frozenset({"actionUrl"})
# Packages say nothing more after these: their package-scoped subscriptions are removed once these are queued.
_FINAL_STATUSES = frozenset({"Archived", "Rejected", "Revoked", "Failed", "InputRejected"})


def delivery_message(subscription_id: str, event: WebhookEvent, attempt: int = 1,
                     subscription: Subscription | None = None) -> dict[str, Any]:
    """One `webhook-events` message: deliver `event` to one subscriber (attempt counts from 1).

    A package-scoped subscription travels with the message, so its package's last events still reach it
    after the subscription itself is removed (`SubscriptionRepository.retire`).
    """
    message: dict[str, Any] = {"subscriptionId": subscription_id, "attempt": attempt,
                               "event": event.model_dump(mode="json", by_alias=True)}
    if subscription is not None and subscription.package_ref:
        message["subscription"] = subscription.model_dump(mode="json")
    return message


def _with_package_subscribers(store: Store, repository: SubscriptionRepository, package_ref: str,
                              known: list[Subscription]) -> list[Subscription]:
    """A package request may name its own `subscribers` (manifest, routing profile or API); they get
    package-scoped subscriptions the first time the package has something to say."""
    record = store.packages.get(package_ref)
    if record is None or not record.subscribers:
        return known
    ids = {s.id for s in known}
    added = [repository.put(package_subscription(package_ref, url)) for url in record.subscribers
             if package_subscription(package_ref, url).id not in ids]
    return known + added


def _last_word(event_type: EventType, data: dict[str, Any]) -> bool:
    return event_type in (EventType.ARCHIVED, EventType.INPUT_REJECTED) or (
        event_type is EventType.STATUS_CHANGED and str(data.get("status", "")) in _FINAL_STATUSES)


def _for(subscription: Subscription, event: WebhookEvent) -> WebhookEvent:
    """The event as this subscriber may see it (same id): without operator-only data for a named subscriber."""
    if not subscription.named_by_request or not OPERATOR_ONLY_DATA & event.data.keys():
        return event
    return event.model_copy(update={"data": {k: v for k, v in event.data.items() if k not in OPERATOR_ONLY_DATA}})


def publish_event(store: Store, event_type: EventType, package_ref: str, data: dict[str, Any]) -> None:
    """Queue `event_type` for every subscriber that wants it. Never raises for delivery problems:
    the pipeline's own work has already happened and must not be retried because of a subscriber."""
    try:
        repository = subscriptions(store)
        every = _with_package_subscribers(store, repository, package_ref, repository.for_package(package_ref))
        matching = [s for s in every if s.wants(event_type, package_ref, data)]
        if not matching:
            if _last_word(event_type, data):
                repository.retire(package_ref)
            return
        # Unknown values are left out rather than sent as null: a flow treats a null where the
        # trigger's schema (shared.webhooks.events.EVENT_DATA) says string as an error.
        known = {key: value for key, value in data.items() if value is not None}
        event = WebhookEvent(type=event_type, packageRef=package_ref, data=known)
        for subscription in matching:
            message = delivery_message(subscription.id, _for(subscription, event), subscription=subscription)
            store.clients.send_json(names.WEBHOOK_EVENTS_QUEUE, message)
        log_event(_log, "webhook.published", event_type=event_type.value, event_id=event.id,
                  subscribers=len(matching))
        if _last_word(event_type, data):
            log_event(_log, "webhook.retired", removed=repository.retire(package_ref))
    except Exception:  # publishing is best effort for the caller, see the docstring
        _log.error("webhook.publish_failed", exc_info=True, extra={"fields": {"event_type": event_type.value}})
