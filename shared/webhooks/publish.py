"""Publishing app events to webhook subscribers.

The pipeline calls `publish_event` when something a flow may wait for happens. Delivery is
asynchronous (one queue message per subscriber), so a slow subscriber never slows the pipeline.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from shared.storage.store import Store


class EventType(StrEnum):
    STATUS_CHANGED = "package.status_changed"
    SIGNER_ACTED = "package.signer_acted"
    ARCHIVED = "package.archived"
    INPUT_REJECTED = "package.input_rejected"
    LINK_REQUESTED = "package.link_requested"


def publish_event(store: Store, event_type: EventType, package_ref: str, data: dict[str, Any]) -> None:
    """Queue `event_type` for every subscriber that wants it. Never raises for delivery problems."""
    # The subscription store and delivery queue arrive with the HTTP API; until then nothing subscribes.
    del store, event_type, package_ref, data
