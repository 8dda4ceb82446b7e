"""Publishing and delivering webhook events against Azurite and a loopback receiver."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from shared.config import Settings
from shared.storage import names
from shared.storage.store import Store
from shared.webhooks.delivery import Outcome, deliver, retry_delay_s
from shared.webhooks.events import EventType
from shared.webhooks.publish import publish_event, subscriptions
from shared.webhooks.subscriptions import Subscription, package_subscription
from tests.webhooks.conftest import SIGNING_SECRET
from tests.webhooks.receiver import Receiver, take_messages
from tests.webhooks.verify import verifies


def _ref() -> str:
    return f"wh-{uuid.uuid4().hex[:10]}"


def subscribe(store: Store, url: str, events: list[EventType], **extra: Any) -> Subscription:
    return subscriptions(store).add(Subscription(url=url, events=events, **extra))


def test_publish_queues_one_message_per_matching_subscriber(store: Store) -> None:
    ref = _ref()
    everything = subscribe(store, "https://8.8.8.8/a", list(EventType))
    signed_only = subscribe(store, "https://8.8.8.8/b", [EventType.STATUS_CHANGED], statuses=["Finished"])
    other_package = subscribe(store, "https://8.8.8.8/c", [EventType.STATUS_CHANGED], package_ref=_ref())
    archived_only = subscribe(store, "https://8.8.8.8/d", [EventType.ARCHIVED])

    publish_event(store, EventType.STATUS_CHANGED, ref, {"status": "Pending", "previousStatus": "Creating"})
    publish_event(store, EventType.STATUS_CHANGED, ref, {"status": "Finished", "previousStatus": "Pending"})

    all_messages = take_messages(store, everything.id)
    assert sorted(m["event"]["data"]["status"] for m in all_messages) == ["Finished", "Pending"]
    assert all(m["attempt"] == 1 and m["event"]["packageRef"] == ref for m in all_messages)
    assert all(m["event"]["type"] == "package.status_changed" and m["event"]["id"] for m in all_messages)
    assert [m["event"]["data"]["status"] for m in take_messages(store, signed_only.id)] == ["Finished"]
    assert take_messages(store, other_package.id) == []
    assert take_messages(store, archived_only.id) == []


def test_delivery_is_signed_and_verifiable(settings: Settings, store: Store, receiver: Receiver) -> None:
    ref = _ref()
    subscription = subscribe(store, receiver.url, [EventType.ARCHIVED])
    publish_event(store, EventType.ARCHIVED, ref, {"archiveLocation": "signed-documents/x"})
    [message] = take_messages(store, subscription.id)

    result = deliver(settings, store, message)

    assert result.outcome is Outcome.DELIVERED and result.status_code == 200
    [request] = receiver.requests
    assert verifies(SIGNING_SECRET, request.body, request.headers)
    assert not verifies("wrong-secret", request.body, request.headers)
    body = json.loads(request.body)
    assert body == {"id": message["event"]["id"], "type": "package.archived", "packageRef": ref,
                    "occurredAt": message["event"]["occurredAt"], "data": {"archiveLocation": "signed-documents/x"}}
    assert request.headers["webhook-id"] == body["id"]
    assert request.headers["x-event-type"] == "package.archived"
    assert request.headers["content-type"] == "application/json"


def test_failures_retry_with_the_same_event_then_dead_letter(settings: Settings, store: Store,
                                                             receiver: Receiver) -> None:
    receiver.statuses = [500, 302, 503]
    subscription = subscribe(store, receiver.url, [EventType.INPUT_REJECTED])
    publish_event(store, EventType.INPUT_REJECTED, _ref(), {"reason": "not a PDF"})
    [message] = take_messages(store, subscription.id)
    event_id = message["event"]["id"]

    first = deliver(settings, store, message)
    assert first.outcome is Outcome.RETRY_SCHEDULED and first.status_code == 500
    [second_message] = take_messages(store, subscription.id)
    assert second_message["attempt"] == 2 and second_message["event"] == message["event"]

    second = deliver(settings, store, second_message)  # a redirect is not followed, so it failed
    assert second.outcome is Outcome.RETRY_SCHEDULED and second.status_code == 302
    [third_message] = take_messages(store, subscription.id)

    third = deliver(settings, store, third_message)
    assert third.outcome is Outcome.DEAD_LETTERED and third.attempt == 3
    assert take_messages(store, subscription.id) == []
    assert [r.path for r in receiver.requests] == ["/hook"] * 3
    assert {r.headers["webhook-id"] for r in receiver.requests} == {event_id}

    dead = store.clients.table(names.WEBHOOK_DEAD_LETTERS_TABLE).get_entity(subscription.id, event_id)
    assert dead["Attempts"] == 3 and dead["LastError"] == "HTTP 503"
    assert json.loads(dead["EventJson"])["data"] == {"reason": "not a PDF"}


def test_unreachable_receiver_is_retried(settings: Settings, store: Store, receiver: Receiver) -> None:
    subscription = subscribe(store, "http://127.0.0.1:9/closed", [EventType.LINK_REQUESTED])
    publish_event(store, EventType.LINK_REQUESTED, _ref(), {"email": "a@example.com"})
    [message] = take_messages(store, subscription.id)
    result = deliver(settings, store, message)
    assert result.outcome is Outcome.RETRY_SCHEDULED and result.error == "ConnectionError"
    assert take_messages(store, subscription.id)[0]["attempt"] == 2


def test_strict_mode_refuses_loopback_at_delivery_time(settings: Settings, store: Store,
                                                      receiver: Receiver) -> None:
    strict = settings.model_copy(update={"webhook_allow_loopback": False, "webhook_max_attempts": 1})
    subscription = subscribe(store, receiver.url, [EventType.SIGNER_ACTED])
    publish_event(store, EventType.SIGNER_ACTED, _ref(), {"email": "a@example.com", "action": "signed"})
    [message] = take_messages(store, subscription.id)
    result = deliver(strict, store, message)
    assert result.outcome is Outcome.DEAD_LETTERED and "scheme must be https" in (result.error or "")
    assert receiver.requests == []


def test_gone_removes_the_subscription_and_removed_subscriptions_get_nothing(
        settings: Settings, store: Store, receiver: Receiver) -> None:
    receiver.statuses = [410]
    subscription = subscribe(store, receiver.url, [EventType.ARCHIVED])
    publish_event(store, EventType.ARCHIVED, _ref(), {})
    [message] = take_messages(store, subscription.id)
    assert deliver(settings, store, message).outcome is Outcome.DROPPED
    assert subscriptions(store).get(subscription.id) is None
    assert deliver(settings, store, message).outcome is Outcome.DROPPED
    assert len(receiver.requests) == 1


@pytest.mark.parametrize("attempt, low, high", [(1, 24, 36), (2, 48, 72), (5, 384, 576), (12, 2880, 3600)])
def test_backoff_doubles_and_is_capped(attempt: int, low: int, high: int) -> None:
    settings = Settings({"WEBHOOK_RETRY_BASE_S": "30", "WEBHOOK_RETRY_MAX_S": "3600"})
    delays = {retry_delay_s(settings, attempt) for _ in range(20)}
    assert all(low <= d <= high for d in delays)
    assert retry_delay_s(settings, 1, retry_after_s=600) == 600


def test_a_package_requests_own_subscribers_get_its_events(store: Store) -> None:
    from shared.storage.packages import PackageRecord

    ref = _ref()
    store.packages.insert(PackageRecord(ref=ref, subscribers=["https://8.8.8.8/own"]))
    publish_event(store, EventType.SIGNER_ACTED, ref, {"email": "a@example.com", "action": "signed"})
    publish_event(store, EventType.ARCHIVED, ref, {})
    publish_event(store, EventType.ARCHIVED, _ref(), {})  # another package: not theirs
    own = package_subscription(ref, "https://8.8.8.8/own")
    assert [m["event"]["type"] for m in take_messages(store, own.id)] == ["package.signer_acted",
                                                                         "package.archived"]
    # The package said its last word: its own subscription is gone (operators' are never touched).
    assert subscriptions(store).get(own.id, ref) is None
