"""The `WebhookSubscriptions` table: who wants which events.

All subscriptions share one partition. A deployment has tens or hundreds of them (one per flow
trigger), so publishing reads the partition and filters here; that is one query per event and
avoids a second index that could drift. Subscriber URLs are treated as secrets (a Power Automate
callback URL carries its own signature), so they are never logged.
"""

from __future__ import annotations

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


def new_subscription_id() -> str:
    return uuid.uuid4().hex


def package_subscription(package_ref: str, url: str) -> Subscription:
    """The subscription behind a package request's `subscribers` entry: every event of that package.
    Its id is derived from both, so writing it again changes nothing."""
    digest = hashlib.sha256(f"{package_ref}\n{url}".encode()).hexdigest()[:32]
    return Subscription(id=digest, url=url, events=list(EventType), package_ref=package_ref, trigger="package")


class Subscription(BaseModel):
    id: str = Field(default_factory=new_subscription_id)
    url: str
    events: list[EventType]
    package_ref: str | None = None  # only this package's events
    statuses: list[str] = Field(default_factory=list)  # status_changed events only for these statuses
    trigger: str | None = None  # the OpenAPI trigger operation that made it, if any
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))

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
            "PartitionKey": PARTITION,
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

    def get(self, subscription_id: str) -> Subscription | None:
        try:
            return Subscription.from_entity(self._table.get_entity(PARTITION, subscription_id))
        except ResourceNotFoundError:
            return None

    def remove(self, subscription_id: str) -> bool:
        """Delete a subscription. Returns False when there was none (deleting twice is fine)."""
        if self.get(subscription_id) is None:
            return False
        self._table.delete_entity(PARTITION, subscription_id)
        return True

    def all(self) -> Iterator[Subscription]:
        for entity in self._table.query_entities("PartitionKey eq @pk", parameters={"pk": PARTITION}):
            yield Subscription.from_entity(entity)
