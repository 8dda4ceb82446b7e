"""The events a subscriber can receive, and the JSON body of one delivery."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class EventType(StrEnum):
    STATUS_CHANGED = "package.status_changed"
    SIGNER_ACTED = "package.signer_acted"
    ARCHIVED = "package.archived"
    INPUT_REJECTED = "package.input_rejected"
    LINK_REQUESTED = "package.link_requested"


class WebhookEvent(BaseModel):
    """The body POSTed to a subscriber."""

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    id: str = Field(default_factory=lambda: uuid.uuid4().hex, title="Event ID",
                    description="Unique id of the event; the same on every retry, so receivers can drop duplicates.")
    type: EventType = Field(title="Event Type", description="What happened, for example package.status_changed.")
    occurred_at: datetime = Field(default_factory=lambda: datetime.now(UTC), alias="occurredAt",
                                  title="Occurred At", description="When the event happened (UTC, ISO 8601).")
    package_ref: str = Field(alias="packageRef", title="Package Reference",
                             description="The package the event is about.")
    data: dict[str, Any] = Field(default_factory=dict, title="Event Data",
                                 description="Event details: for status changes `status` and `previousStatus`; "
                                             "for signer actions the signer's e-mail and action.")

    def body(self) -> bytes:
        return self.model_dump_json(by_alias=True).encode("utf-8")
