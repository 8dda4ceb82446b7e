"""Signatures on webhook deliveries, as the Standard Webhooks specification defines them.

Every delivery carries
    webhook-id: <event id>             the same on every retry of one event (receivers dedupe on it)
    webhook-timestamp: <unix seconds>
    webhook-signature: v1,<base64 HMAC-SHA256(key, "<id>.<timestamp>.<raw body>")>[ v1,<...>]
so a subscriber verifies with any Standard Webhooks library (`standardwebhooks` for Python, `svix`,
the Node, Go, Java and .NET ports) and nothing of ours.

One `v1,` entry per configured secret (WEBHOOK_SIGNING_SECRET is a comma-separated list, the first
being current), so receivers keep verifying while the secret rotates. A secret written as
`whsec_<base64>` is the key in the specification's own form; any other value is taken as the key's
UTF-8 bytes, and `receiver_secret` gives the `whsec_` form to hand to subscribers.

The signing itself is the `standardwebhooks` package's (no dependencies of its own), so what we send
is exactly what its verifier checks.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
EVENT_TYPE_HEADER = "X-Event-Type"  # not part of the specification: lets receivers route before parsing
SECRET_PREFIX = "whsec_"  # noqa: S105 (the format's prefix, not a secret)


def receiver_secret(secret: str) -> str:
    """The secret in the `whsec_<base64>` form that Standard Webhooks libraries take."""
    if secret.startswith(SECRET_PREFIX):
        return secret
    return SECRET_PREFIX + base64.b64encode(secret.encode("utf-8")).decode("ascii")


def signature_header(secrets: list[str], event_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value: one `v1,<signature>` per secret, separated by spaces."""
    sent_at = datetime.fromtimestamp(timestamp, tz=UTC)
    text = body.decode("utf-8")
    return " ".join(Webhook(receiver_secret(secret)).sign(event_id, sent_at, text) for secret in secrets)


def signed_headers(secrets: list[str], event_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        ID_HEADER: event_id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature_header(secrets, event_id, timestamp, body),
    }
