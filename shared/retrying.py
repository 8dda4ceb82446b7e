"""When work comes back later: one rule turning an error into a delay in whole seconds.

Queue work that meets a `RetryLater` (throttled by the gateway, no rate token, the shared limiter
unavailable) puts its message back with this delay as the visibility timeout; HTTP answers use it as
Retry-After. Other errors come back after the caller's own delay.
"""

from __future__ import annotations

import math

from shared.connective.errors import RetryLater


def visibility_delay_s(error: BaseException, otherwise_s: float = 1.0) -> int:
    """Whole seconds before the work is tried again: the error's own wait when it is a `RetryLater`,
    else `otherwise_s`; rounded up, at least 1 (a message put back with 0 comes straight back)."""
    seconds = error.retry_after_s if isinstance(error, RetryLater) else otherwise_s
    return max(1, math.ceil(seconds))
