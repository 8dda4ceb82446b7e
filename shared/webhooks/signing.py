"""Signatures on webhook deliveries, and the check a receiver runs.

Every delivery carries
    X-Signature-Timestamp: <unix seconds>
    X-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>[,v1=<hex>...]
One `v1=` entry per configured secret (WEBHOOK_SIGNING_SECRET is a comma-separated list, the first
being current), so a receiver keeps verifying while the secret rotates.

The timestamp is inside the signed text, so a receiver that refuses old timestamps refuses replays
of captured deliveries; within the tolerance window it dedupes on the X-Event-Id header.
"""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "X-Signature"
TIMESTAMP_HEADER = "X-Signature-Timestamp"
EVENT_ID_HEADER = "X-Event-Id"
EVENT_TYPE_HEADER = "X-Event-Type"
SCHEME = "v1"
DEFAULT_TOLERANCE_S = 300


def compute_signature(secret: str, timestamp: str, body: bytes) -> str:
    signed = timestamp.encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()


def signature_header(secrets: list[str], timestamp: str, body: bytes) -> str:
    return ",".join(f"{SCHEME}={compute_signature(secret, timestamp, body)}" for secret in secrets)


def verify_signature(secret: str, timestamp: str | None, body: bytes, header: str | None,
                     tolerance_s: float = DEFAULT_TOLERANCE_S, now: float | None = None) -> bool:
    """True when `header` holds a v1 signature of `body` at `timestamp` made with `secret`, and the
    timestamp lies within `tolerance_s` of now (either way: clocks drift)."""
    if not timestamp or not header:
        return False
    try:
        sent_at = int(timestamp)
    except ValueError:
        return False
    current = time.time() if now is None else now
    if abs(current - sent_at) > tolerance_s:
        return False
    expected = compute_signature(secret, timestamp, body)
    matched = False
    for part in header.split(","):
        scheme, _, value = part.strip().partition("=")
        if scheme == SCHEME:
            # bytes: compare_digest refuses non-ASCII str (TypeError), and a header may hold anything
            matched |= hmac.compare_digest(expected.encode(), value.encode("utf-8", "replace"))
    return matched
