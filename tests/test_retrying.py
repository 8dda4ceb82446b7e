"""One error tree for "come back later", one rule for the delay, one Retry-After parser."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
import requests

from shared.config import Settings
from shared.connective.errors import (
    RateLimitDeferred,
    RateLimiterUnavailable,
    RetryLater,
    ServerError,
    ThrottledError,
    error_from_response,
)
from shared.connective.retry import retry_after_s
from shared.retrying import queue_delay_s, visibility_delay_s
from shared.webhooks import delivery


def test_throttling_and_deferral_share_one_base_with_the_wait() -> None:
    throttled = error_from_response(429, b'{"ErrorCode": "Throttled"}', retry_after=2.5)
    assert isinstance(throttled, ThrottledError) and isinstance(throttled, RetryLater)
    assert throttled.retry_after_s == 2.5 and throttled.status == 429
    for deferred in (RateLimitDeferred(0.2), RateLimiterUnavailable(3.0, "table unreachable")):
        assert isinstance(deferred, RetryLater)
    assert not isinstance(error_from_response(503, b""), RetryLater)


@pytest.mark.parametrize(("error", "otherwise_s", "delay"), [
    (RateLimitDeferred(0.0), 30.0, 1),
    (RateLimitDeferred(0.2), 30.0, 1),
    (RateLimitDeferred(4.01), 30.0, 5),
    (ThrottledError(429, None, "slow down", retry_after=7.0), 30.0, 7),
    (ServerError(502, None, "bad gateway"), 30.0, 30),
    (ServerError(502, None, "bad gateway"), 0.0, 1),
])
def test_every_error_becomes_one_whole_second_delay(error: BaseException, otherwise_s: float, delay: int) -> None:
    assert visibility_delay_s(error, otherwise_s) == delay


@pytest.mark.parametrize(("error", "delay"), [
    # No token yet: back half of QUEUE_RATE_WAIT_S (2 s) early, rounded down, so the next attempt waits for the room.
    (RateLimitDeferred(4.01), 3),
    (RateLimitDeferred(2.5), 1),
    (RateLimitDeferred(0.2), 1),
    # A 429's Retry-After and an unreachable limiter table are waited out in full.
    (ThrottledError(429, None, "slow down", retry_after=4.01), 5),
    (RateLimiterUnavailable(4.01, "table unreachable"), 5),
    (ServerError(502, None, "bad gateway"), 30),
])
def test_queue_work_comes_back_before_the_room_it_waits_for(error: BaseException, delay: int) -> None:
    assert queue_delay_s(error, Settings({"QUEUE_RATE_WAIT_S": "2"}), 30.0) == delay


def test_retry_after_is_read_in_seconds_and_as_an_http_date() -> None:
    now = datetime(2026, 12, 4, 12, 0, 0, tzinfo=UTC)
    assert retry_after_s("12") == 12.0
    assert retry_after_s(format_datetime(now + timedelta(seconds=90), usegmt=True), lambda: now) == 90.0
    assert retry_after_s(format_datetime(now - timedelta(seconds=5), usegmt=True), lambda: now) == 0.0
    assert retry_after_s("soon") is None and retry_after_s(None) is None


def test_the_webhook_delivery_reads_a_receivers_retry_after_date() -> None:
    response = requests.Response()
    response.headers["Retry-After"] = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    assert 115 <= (delivery._retry_after(response) or 0) <= 121
    response.headers["Retry-After"] = "30"
    assert delivery._retry_after(response) == 30
