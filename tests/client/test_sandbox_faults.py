"""Retries, 429, timeouts and the ambiguous-create rule against the sandbox's fault knobs."""

from __future__ import annotations

import pytest

from shared.connective import (
    AmbiguousCreateError,
    ConnectiveClient,
    ConnectiveConfig,
    LocalRateLimiter,
    RateLimitDeferred,
    RetryConfig,
    ServerError,
    ThrottledError,
)


def client_for(sandbox, *, limiter=None, read_timeout_s: float = 10, retry: RetryConfig | None = None):
    config = ConnectiveConfig(base_url=sandbox.base_url, username=sandbox.user, password=sandbox.password,
                              read_timeout_s=read_timeout_s,
                              retry=retry or RetryConfig(max_attempts=4, total_s=10, backoff_base_s=0.05))
    return ConnectiveClient(config, limiter or LocalRateLimiter(10_000, 60))


def api_calls(sandbox) -> int:
    return sum(sandbox.admin("GET", "stats").json()["calls_by_operation"].values())


def knobs(sandbox, **values) -> None:
    sandbox.admin("POST", "config", json=values)


def test_the_sandbox_429_is_waited_out_as_retry_after_says(sandbox):
    knobs(sandbox, rate_calls=2, rate_window=1)
    client = client_for(sandbox)  # its own limiter is far above the sandbox's budget
    for _ in range(4):
        client.package_list()
    stats = sandbox.admin("GET", "stats").json()
    assert stats["throttled"] >= 1


def test_a_429_longer_than_the_rate_wait_is_handed_to_the_caller(sandbox):
    knobs(sandbox, rate_calls=1, rate_window=30)
    client = client_for(sandbox).with_rate_wait(1)
    client.package_list()
    with pytest.raises(ThrottledError) as caught:
        client.package_list()
    assert 25 < caught.value.retry_after <= 31


def test_the_clients_limiter_keeps_calls_under_the_sandbox_budget(sandbox):
    knobs(sandbox, rate_calls=3, rate_window=1)
    client = client_for(sandbox, limiter=LocalRateLimiter(3, 1, 0.05))
    for _ in range(7):
        client.package_list()
    assert sandbox.admin("GET", "stats").json()["throttled"] == 0
    knobs(sandbox, rate_calls=0)
    queue_client = client_for(sandbox, limiter=LocalRateLimiter(3, 30)).with_rate_wait(0)
    for _ in range(3):
        queue_client.package_list()
    calls_before = api_calls(sandbox)
    with pytest.raises(RateLimitDeferred):
        queue_client.package_list()
    assert api_calls(sandbox) == calls_before


def test_503_is_retried_with_backoff_until_attempts_run_out(sandbox):
    knobs(sandbox, fault_503_rate=1.0)
    client = client_for(sandbox, retry=RetryConfig(max_attempts=3, total_s=10, backoff_base_s=0.01))
    with pytest.raises(ServerError) as caught:
        client.create_package({"initiator": "a@example.com", "package_name": "p"})
    assert caught.value.status == 503 and caught.value.error_code == "Server.Unavailable"
    assert api_calls(sandbox) == 3


def test_a_500_on_create_is_ambiguous_and_not_repeated(sandbox):
    knobs(sandbox, fault_500_rate=1.0)
    client = client_for(sandbox)
    with pytest.raises(AmbiguousCreateError) as caught:
        client.create_package({"initiator": "a@example.com", "package_name": "p", "external_package_reference": "r"})
    assert caught.value.status == 500
    assert api_calls(sandbox) == 1


def test_a_create_that_times_out_is_not_repeated_and_reconciles_by_reference(sandbox):
    knobs(sandbox, hang_rate=1.0, hang_seconds=5)  # far past the read timeout, however slow the machine
    client = client_for(sandbox, read_timeout_s=0.5)
    with pytest.raises(AmbiguousCreateError):
        client.create_package({"initiator": "a@example.com", "package_name": "p",
                               "external_package_reference": "ref-hang"})
    knobs(sandbox, hang_rate=0.0)
    found = client.find_packages_by_external_reference("ref-hang")
    assert len(found) == 1  # created once, by the attempt whose answer never came


def test_a_read_that_times_out_is_retried(sandbox):
    client = client_for(sandbox, read_timeout_s=0.5)
    package_id = client.create_package({"initiator": "a@example.com", "package_name": "p"}).package_id
    knobs(sandbox, hang_rate=1.0, hang_seconds=5)
    calls_before = api_calls(sandbox)
    with pytest.raises(Exception, match="ReadTimeout"):
        client_for(sandbox, read_timeout_s=0.3,
                   retry=RetryConfig(max_attempts=2, total_s=5, backoff_base_s=0.01)).get_package_status(package_id)
    assert api_calls(sandbox) - calls_before == 2
