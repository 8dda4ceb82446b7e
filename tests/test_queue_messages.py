"""Every queue trigger reads its message through one typed check: a malformed message is logged with
its reason and dropped (the invocation succeeds, so the host neither retries it nor poisons it)."""

from __future__ import annotations

import json
import logging
from types import SimpleNamespace
from typing import Any

import azure.functions as func
import pytest

from functions import archive, bulk, callbacks, intake, webhooks
from shared.messages import BulkFeedMessage, PackageMessage, WebhookDeliveryMessage, read_message

BAD_BODIES = [b"not json", b"\xff\xfe", b"[1, 2]", b'{"packageRef": 42}', b'{"packageRef": "../etc"}', b"{}"]


@pytest.mark.parametrize("body", BAD_BODIES)
def test_a_malformed_package_message_is_dropped_with_a_reason(body: bytes, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="shared.messages")
    assert read_message(body, PackageMessage, "archive-requests", "m-1") is None
    [record] = [r for r in caplog.records if r.getMessage() == "queue.bad_message"]
    fields: dict[str, Any] = record.fields  # type: ignore[attr-defined]
    assert fields["queue"] == "archive-requests" and fields["message_id"] == "m-1" and fields["reason"]
    assert "etc" not in fields["reason"]  # the offending value stays out of the log


def test_fields_a_model_does_not_name_are_kept_for_the_handler() -> None:
    body = json.dumps({"packageRef": "inb-0123456789abcdef", "traceparent": "00-x", "reason": "link-request"})
    assert read_message(body.encode(), PackageMessage, "status-refresh", None) == json.loads(body)
    delivery = {"subscriptionId": "s-1", "event": {"type": "x"}, "attempt": 2, "traceparent": "00-y"}
    assert read_message(json.dumps(delivery).encode(), WebhookDeliveryMessage, "webhook-events", None) == delivery
    assert read_message(b'{"event": {}}', WebhookDeliveryMessage, "webhook-events", None) is None


@pytest.mark.parametrize("body", [b'{"job": "j-1"}', b'{"job": "../x", "step": 1}', b'{"job": "j-1", "step": "1"}',
                                  b'{"job": "j-1", "step": true}', b'{"job": 7, "step": 1}', b"[]"])
def test_a_malformed_bulk_feed_message_is_dropped(body: bytes) -> None:
    assert read_message(body, BulkFeedMessage, "bulk-feed", None) is None
    step = {"job": "j-1", "step": 3, "generation": 2}
    assert read_message(json.dumps(step).encode(), BulkFeedMessage, "bulk-feed", None) == step


@pytest.mark.parametrize("trigger", [archive.archive_signed_package, callbacks.refresh_package_status,
                                     webhooks.deliver_webhook_event, intake.create_package_from_request,
                                     bulk.bulk_feed_step])
def test_queue_triggers_return_normally_on_a_malformed_message(trigger: Any) -> None:
    context = SimpleNamespace(invocation_id="inv-bad", function_name="trigger", trace_context=None)
    function = getattr(trigger, "_function", None)
    handler = function.get_user_function() if function is not None else trigger
    assert handler(func.QueueMessage(id="m-2", body=b"{not json"), context) is None
