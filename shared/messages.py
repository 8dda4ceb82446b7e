"""The queue messages, typed: one model per queue, and one way for a trigger to read its message.

Messages are JSON. Fields a model does not name (a trace context, a reason, what a later version
adds) are ignored by the check and stay in the message for the handler. A message that is not
JSON or misses what its queue needs is logged with the reason and dropped: nobody can act on it, and
retrying it would only fill the poison queue after five tries.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError, field_validator

from shared.logging import get_logger, log_event
from shared.storage import names
from shared.storage.packages import is_valid_package_ref

_log = get_logger(__name__)


class QueueMessageModel(BaseModel):
    """The base of every queue's model: fields it does not name are ignored by the check."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class PackageMessage(QueueMessageModel):
    """`package-requests`, `status-refresh` and `archive-requests`: work on one package."""

    package_ref: str = Field(alias="packageRef")

    @field_validator("package_ref")
    @classmethod
    def _a_package_reference(cls, value: str) -> str:
        if not is_valid_package_ref(value):
            raise ValueError("not a package reference")
        return value


class BulkFeedMessage(QueueMessageModel):
    """`bulk-feed`: one step of a bulk send (shared.bulk.feeder); `generation` and the rest stay for the handler."""

    job: str = Field(pattern=names.BULK_JOB_ID_PATTERN)
    step: StrictInt = Field(ge=0)


class WebhookDeliveryMessage(QueueMessageModel):
    """`webhook-events`: one delivery of one event to one subscriber."""

    subscription_id: str = Field(alias="subscriptionId", min_length=1)
    event: dict[str, Any]
    attempt: int = Field(default=1, ge=1)


def read_message(body: bytes, model: type[QueueMessageModel], queue: str,
                 message_id: str | None) -> dict[str, Any] | None:
    """The message as a dict once it passes `model`; None (logged with the reason) when it does not."""
    reason = _why_unreadable(body, model)
    if reason is not None:
        log_event(_log, "queue.bad_message", logging.WARNING, queue=queue, message_id=message_id, reason=reason)
        return None
    payload: dict[str, Any] = json.loads(body)
    return payload


def _why_unreadable(body: bytes, model: type[QueueMessageModel]) -> str | None:
    try:
        payload = json.loads(body)
    except ValueError as error:  # json.JSONDecodeError and UnicodeDecodeError are ValueErrors
        return f"not JSON ({type(error).__name__})"
    if not isinstance(payload, dict):
        return "not a JSON object"
    try:
        model.model_validate(payload)
    except ValidationError as error:
        # Field locations and messages only: the offending values stay out of the log.
        return "; ".join(f"{'.'.join(map(str, item['loc'])) or 'message'}: {item['msg']}" for item in error.errors())
    return None
