"""The `WebhookSubscriptions` table: who wants which events.

The partition is the index publishing reads by:
- `subscription`: what operators created through the API, for every package or filtered to one
  (tens or hundreds: one per flow trigger);
- `package-{packageRef}`: the `subscribers` a package request named (manifest, routing profile, API
  body), created the first time the package has something to say.
An event reads its package's partition and the operators' one (filtered to rows for every package or
for this one), never the whole table. A package's own subscriptions are removed once the package has
said its last word (`retire`); an operator's stays until the operator or its flow removes it.

Subscriber URLs are treated as secrets (a Power Automate callback URL carries its own signature), so
they are never logged.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableClient
from pydantic import BaseModel, Field

from shared.webhooks.events import EventType

PARTITION = "subscription"
PACKAGE_TRIGGER = "package"  # the `trigger` of a subscription a package request named


def package_partition(package_ref: str) -> str:
    return f"package-{package_ref}"


def new_subscription_id() -> str:
    return uuid.uuid4().hex


def package_subscription(package_ref: str, url: str) -> Subscription:
    """The subscription behind a package request's `subscribers` entry: every event of that package.
    Its id is derived from both, so writing it again changes nothing."""
    digest = hashlib.sha256(f"{package_ref}\n{url}".encode()).hexdigest()[:32]
    return Subscription(id=digest, url=url, events=list(EventType), package_ref=package_ref,
                        trigger=PACKAGE_TRIGGER)


class Subscription(BaseModel):
    id: str = Field(default_factory=new_subscription_id)
    url: str
    events: list[EventType]
    package_ref: str | None = None  # only this package's events
    statuses: list[str] = Field(default_factory=list)  # status_changed events only for these statuses
    trigger: str | None = None  # the OpenAPI trigger operation that made it, if any
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))

    @property
    def named_by_request(self) -> bool:
        """Named in a package request by whoever uploaded it, not created by an operator through the API."""
        return self.trigger == PACKAGE_TRIGGER

    @property
    def partition(self) -> str:
        return package_partition(self.package_ref) if self.named_by_request and self.package_ref else PARTITION

    def wants(self, event_type: EventType, package_ref: str, data: dict[str, Any]) -> bool:
        if event_type not in self.events:
            return False
        if self.package_ref and self.package_ref != package_ref:
            return False
        if self.statuses and event_type is EventType.STATUS_CHANGED:
            return str(data.get("status", "")) in self.statuses
        return True

    def to_entity(self) -> dict[str, Any]:
        return {
            "PartitionKey": self.partition,
            "RowKey": self.id,
            "Url": self.url,
            "EventsJson": json.dumps([e.value for e in self.events]),
            "StatusesJson": json.dumps(self.statuses),
            "PackageRef": self.package_ref or "",
            "Trigger": self.trigger or "",
            "CreatedAt": self.created_at,
        }

    @classmethod
    def from_entity(cls, entity: dict[str, Any]) -> Subscription:
        return cls(
            id=entity["RowKey"],
            url=entity["Url"],
            events=[EventType(e) for e in json.loads(entity.get("EventsJson") or "[]")],
            statuses=json.loads(entity.get("StatusesJson") or "[]"),
            package_ref=entity.get("PackageRef") or None,
            trigger=entity.get("Trigger") or None,
            created_at=entity.get("CreatedAt") or datetime.now(UTC),
        )


class SubscriptionRepository:
    def __init__(self, table: TableClient) -> None:
        self._table = table

    def add(self, subscription: Subscription) -> Subscription:
        self._table.create_entity(subscription.to_entity())
        return subscription

    def put(self, subscription: Subscription) -> Subscription:
        self._table.upsert_entity(subscription.to_entity())
        return subscription

    def get(self, subscription_id: str, package_ref: str | None = None) -> Subscription | None:
        """An operator's subscription, or (given its package) one a package request named."""
        for partition in (PARTITION, *([package_partition(package_ref)] if package_ref else [])):
            try:
                return Subscription.from_entity(self._table.get_entity(partition, subscription_id))
            except ResourceNotFoundError:
                continue
        return None

    def remove(self, subscription_id: str, package_ref: str | None = None) -> bool:
        """Delete a subscription. Returns False when there was none (deleting twice is fine)."""
        found = self.get(subscription_id, package_ref)
        if found is None:
            return False
        self._table.delete_entity(found.partition, subscription_id)
        return True

    def all(self) -> Iterator[Subscription]:
        """Every subscription an operator created."""
        for entity in self._table.query_entities("PartitionKey eq @pk", parameters={"pk": PARTITION}):
            yield Subscription.from_entity(entity)

    def for_package(self, package_ref: str) -> list[Subscription]:
        """The subscriptions an event of this package may go to: the operators' for every package or for this
        one, and the package's own. Two partition queries, whatever the number of packages."""
        # The SDK finds parameters between spaces, hence the spaced parentheses.
        operators = self._table.query_entities("PartitionKey eq @pk and ( PackageRef eq @every or PackageRef eq @ref )",
                                               parameters={"pk": PARTITION, "every": "", "ref": package_ref})
        own = self._table.query_entities("PartitionKey eq @pk", parameters={"pk": package_partition(package_ref)})
        return [Subscription.from_entity(entity) for entity in (*operators, *own)]

    def retire(self, package_ref: str) -> int:
        """Remove the subscriptions a package's request named. Returns how many. An operator's subscription
        filtered to the package stays until the operator (or the flow that made it) removes it: flows
        unsubscribe by themselves and expect to find it."""
        own = self._table.query_entities("PartitionKey eq @pk", parameters={"pk": package_partition(package_ref)})
        scoped = [Subscription.from_entity(entity) for entity in own]
        for subscription in scoped:
            with contextlib.suppress(ResourceNotFoundError):
                self._table.delete_entity(subscription.partition, subscription.id)
        return len(scoped)
