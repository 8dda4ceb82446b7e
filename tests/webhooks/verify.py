"""What a subscriber runs: the stock Standard Webhooks verifier, fed our deliveries."""

from __future__ import annotations

from collections.abc import Mapping

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from shared.webhooks.signing import receiver_secret


def verifies(secret: str, body: bytes, headers: Mapping[str, str]) -> bool:
    """True when the `standardwebhooks` package accepts the delivery with the subscriber's secret."""
    try:
        Webhook(receiver_secret(secret)).verify(body, dict(headers), json_parse=False)
    except WebhookVerificationError:
        return False
    return True
