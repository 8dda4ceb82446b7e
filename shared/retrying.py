"""When work comes back later: one rule turning an error into a delay in whole seconds.

Queue work that meets a `RetryLater` (throttled by the gateway, no rate token, the shared limiter
unavailable) puts its message back with this delay as the visibility timeout; HTTP answers use it as
Retry-After. Other errors come back after the caller's own delay.
"""

from __future__ import annotations

import math

from shared.config import Settings
from shared.connective.errors import RateLimitDeferred, RateLimiterUnavailable, RetryLater


def visibility_delay_s(error: BaseException, otherwise_s: float = 1.0) -> int:
    """Whole seconds before the work is tried again: the error's own wait when it is a `RetryLater`,
    else `otherwise_s`; rounded up, at least 1 (a message put back with 0 comes straight back)."""
    seconds = error.retry_after_s if isinstance(error, RetryLater) else otherwise_s
    return max(1, math.ceil(seconds))


def queue_delay_s(error: BaseException, settings: Settings, otherwise_s: float = 1.0) -> int:
    """`visibility_delay_s` for a message that queue work takes up again, which waits up to QUEUE_RATE_WAIT_S
    for a rate token before giving up.

    A message put back for want of a token comes back half that wait before the limiter expects room,
    rounded down: it is then waiting in `acquire` when the room opens. Rounded up, it would come back
    after the room opened, plus the host's polling interval, and the budget would stand unused
    meanwhile (seconds of every window in which queue work waits for tokens). A 429's Retry-After and
    an unreachable limiter table are waited out in full.
    """
    if isinstance(error, RateLimitDeferred) and not isinstance(error, RateLimiterUnavailable):
        return max(1, math.floor(error.retry_after_s - settings.queue_rate_wait_s / 2))
    return visibility_delay_s(error, otherwise_s)
