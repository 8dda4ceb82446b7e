"""Retries, back-off, Retry-After, 429, timeouts and the ambiguous-create rule, on a scripted transport."""

from __future__ import annotations

import io

import pytest
import requests
import urllib3

from shared.connective import (
    AmbiguousCreateError,
    AmbiguousRequestError,
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    RateLimitDeferred,
    ServerError,
    ThrottledError,
    TransportError,
    counters,
)
from shared.connective.models import PackageStatus
from shared.connective.ratelimit import Permit
from tests.client.fakes import make_client

PACKAGE_ID = "0b7e8f4e-4a0e-4c57-9d4d-3f1c2b9a7a11"
STATUS_BODY = {"PackageStatus": "Pending", "PackageName": "p", "Stakeholders": [], "PackageDocuments": []}
CREATE_REQUEST = {"initiator": "a@b.c", "package_name": "Contract", "external_package_reference": "ref-1"}


def connect_refused() -> requests.ConnectionError:
    reason = urllib3.exceptions.NewConnectionError(None, "Connection refused")  # type: ignore[arg-type]
    return requests.ConnectionError(urllib3.exceptions.MaxRetryError(None, "/", reason))  # type: ignore[arg-type]


def connection_dropped() -> requests.ConnectionError:
    return requests.ConnectionError(urllib3.exceptions.ProtocolError("Connection aborted.", ConnectionResetError()))


def test_429_waits_as_retry_after_says_then_succeeds():
    h = make_client()
    h.adapter.script((429, [{"ErrorCode": "Throttled", "Message": "slow down"}], {"Retry-After": "7"}),
                     (200, STATUS_BODY))
    status = h.client.get_package_status(PACKAGE_ID)
    assert status.package_status is PackageStatus.PENDING
    assert h.clock.sleeps == [7.0]
    assert len(h.adapter.sent) == 2


def test_429_with_a_wait_longer_than_the_callers_rate_wait_is_handed_back():
    h = make_client()
    h.adapter.script((429, {"ErrorCode": "Throttled", "Message": "slow down"}, {"Retry-After": "30"}))
    with pytest.raises(ThrottledError) as caught:
        h.client.with_rate_wait(5).get_package_status(PACKAGE_ID)
    assert caught.value.retry_after == 30.0
    assert caught.value.status == 429 and caught.value.error_code == "Throttled"
    assert h.clock.sleeps == []


def test_429_is_retried_even_for_a_create():
    h = make_client()
    h.adapter.script((429, None, {"Retry-After": "1"}), (201, {"PackageId": PACKAGE_ID}))
    assert h.client.create_package(CREATE_REQUEST).package_id == PACKAGE_ID
    assert len(h.adapter.sent) == 2


@pytest.mark.parametrize("status", [502, 503, 504])
def test_gateway_errors_back_off_exponentially_with_full_jitter(status):
    h = make_client(max_attempts=5)
    h.client._transport.policy.random_fraction = lambda: 1.0  # the top of each jitter range
    h.adapter.script((status, None), (status, None), (status, None), (200, STATUS_BODY))
    h.client.get_package_status(PACKAGE_ID)
    assert h.clock.sleeps == [0.5, 1.0, 2.0]


def test_jitter_stays_within_its_range():
    h = make_client(max_attempts=4)
    h.client._transport.policy.random_fraction = lambda: 0.25
    h.adapter.script((503, None), (503, None), (200, STATUS_BODY))
    h.client.get_package_status(PACKAGE_ID)
    assert h.clock.sleeps == [0.125, 0.25]


def test_attempts_are_bounded_and_the_last_error_is_raised():
    h = make_client(max_attempts=3)
    h.adapter.script(*[(503, {"ErrorCode": "Unavailable", "Message": "down"})] * 3)
    with pytest.raises(ServerError) as caught:
        h.client.get_package_status(PACKAGE_ID)
    assert caught.value.status == 503 and caught.value.error_code == "Unavailable"
    assert len(h.adapter.sent) == 3


def test_total_retry_time_is_bounded():
    h = make_client(max_attempts=100, total_s=10)
    h.client._transport.policy.random_fraction = lambda: 1.0
    h.adapter.script(*[(503, None)] * 100)
    with pytest.raises(ServerError):
        h.client.get_package_status(PACKAGE_ID)
    assert sum(h.clock.sleeps) <= 10
    assert len(h.adapter.sent) == 5  # sleeps 0.5 + 1 + 2 + 4; the next (8) would pass 10 s


def test_500_is_not_retried_for_a_read():
    h = make_client()
    h.adapter.script((500, {"ErrorCode": "Internal", "Message": "boom"}))
    with pytest.raises(ServerError):
        h.client.get_package_status(PACKAGE_ID)
    assert len(h.adapter.sent) == 1


def test_connect_failures_are_retried_even_for_a_create():
    h = make_client()
    h.adapter.script(connect_refused(), requests.ConnectTimeout("connect timed out"), (201, {"PackageId": "p1"}))
    assert h.client.create_package(CREATE_REQUEST).package_id == "p1"
    assert len(h.adapter.sent) == 3


def test_connect_failures_exhausted_raise_transport_error_not_ambiguous():
    h = make_client(max_attempts=2)
    h.adapter.script(connect_refused(), connect_refused())
    with pytest.raises(TransportError) as caught:
        h.client.create_package(CREATE_REQUEST)
    assert not isinstance(caught.value, AmbiguousRequestError)


@pytest.mark.parametrize("failure", [requests.ReadTimeout("read timed out"), connection_dropped()])
def test_a_create_that_timed_out_after_sending_is_never_repeated(failure):
    h = make_client()
    h.adapter.script(failure)
    with pytest.raises(AmbiguousCreateError) as caught:
        h.client.create_package(CREATE_REQUEST)
    assert "ExternalPackageReference" in str(caught.value)
    assert len(h.adapter.sent) == 1


@pytest.mark.parametrize("status", [500, 502, 504])
def test_a_create_answered_by_a_server_error_is_ambiguous(status):
    h = make_client()
    h.adapter.script((status, None))
    with pytest.raises(AmbiguousCreateError) as caught:
        h.client.create_instant_package({"initiator": "a@b.c", "document_name": "d"}, b"%PDF-1.4 tiny")
    assert caught.value.status == status
    assert isinstance(caught.value.__cause__, ServerError)
    assert len(h.adapter.sent) == 1


def test_503_means_not_processed_so_a_create_is_retried():
    h = make_client()
    h.adapter.script((503, None, {"Retry-After": "2"}), (200, {"DocumentId": "d1", "Locations": []}))
    added = h.client.add_document_to_package(PACKAGE_ID, {"document_name": "doc"}, b"%PDF-1.4 tiny")
    assert added.document_id == "d1"
    assert h.clock.sleeps == [2.0]


def test_reminders_are_not_sent_twice_after_a_timeout():
    h = make_client()
    h.adapter.script(requests.ReadTimeout("read timed out"))
    with pytest.raises(AmbiguousRequestError) as caught:
        h.client.send_package_reminders(PACKAGE_ID)
    assert not isinstance(caught.value, AmbiguousCreateError)
    assert len(h.adapter.sent) == 1


def test_a_read_timeout_on_an_idempotent_call_is_retried():
    h = make_client()
    h.adapter.script(requests.ReadTimeout("read timed out"), (200, STATUS_BODY))
    assert h.client.get_package_status(PACKAGE_ID).package_status is PackageStatus.PENDING
    assert len(h.clock.sleeps) == 1


def test_delete_answering_404_after_an_unclear_attempt_is_success():
    h = make_client()
    h.adapter.script(requests.ReadTimeout("read timed out"), (404, {"ErrorCode": "Package.NotFound:x"}))
    h.client.delete_package(PACKAGE_ID)
    assert [s.method for s in h.adapter.sent] == ["DELETE", "DELETE"]


def test_delete_answering_404_at_once_is_not_found():
    h = make_client()
    h.adapter.script((404, {"ErrorCode": "Package.NotFound:x", "Message": "no such package"}))
    with pytest.raises(NotFoundError) as caught:
        h.client.delete_package(PACKAGE_ID)
    assert caught.value.error_code_base == "Package.NotFound"


def test_status_change_answering_409_after_an_unclear_attempt_checks_the_status():
    h = make_client()
    h.adapter.script(requests.ReadTimeout("read timed out"), (409, {"ErrorCode": "Package.WrongStatus"}),
                     (200, STATUS_BODY))
    info = h.client.set_package_status(PACKAGE_ID, "pending")
    assert info.package_status is PackageStatus.PENDING
    assert [s.method for s in h.adapter.sent] == ["PUT", "PUT", "GET"]


@pytest.mark.parametrize("now", ["Finished", "Rejected", "Expired"])
def test_pending_after_an_unclear_attempt_counts_as_done_when_the_package_moved_past_it(now: str):
    # The unclear attempt started the flow and a quick signer already finished (or rejected) it.
    h = make_client()
    h.adapter.script((504, {"ErrorCode": "Gateway"}), (409, {"ErrorCode": "Package.InvalidStatus"}),
                     (200, {**STATUS_BODY, "PackageStatus": now}))
    info = h.client.set_package_status(PACKAGE_ID, PackageStatus.PENDING)
    assert info.package_status is PackageStatus(now)


def test_revoke_after_an_unclear_attempt_is_a_conflict_when_the_package_finished_instead():
    h = make_client()
    h.adapter.script(requests.ReadTimeout("read timed out"), (409, {"ErrorCode": "Package.InvalidStatus"}),
                     (200, {**STATUS_BODY, "PackageStatus": "Finished"}))
    with pytest.raises(ConflictError) as caught:
        h.client.set_package_status(PACKAGE_ID, PackageStatus.REVOKED)
    assert caught.value.possibly_applied


def test_pending_answering_409_while_still_draft_is_a_conflict():
    h = make_client()
    h.adapter.script(requests.ReadTimeout("read timed out"), (409, {"ErrorCode": "Package.NoDocuments"}),
                     (200, {**STATUS_BODY, "PackageStatus": "Draft"}))
    with pytest.raises(ConflictError):
        h.client.set_package_status(PACKAGE_ID, PackageStatus.PENDING)


def test_status_change_409_without_an_unclear_attempt_is_a_conflict():
    h = make_client()
    h.adapter.script((409, {"ErrorCode": "Package.NoDocuments", "Message": "no documents"}))
    with pytest.raises(ConflictError) as caught:
        h.client.set_package_status(PACKAGE_ID, PackageStatus.PENDING)
    assert caught.value.error_code == "Package.NoDocuments" and not caught.value.possibly_applied


def test_every_attempt_takes_a_rate_token():
    taken: list[float] = []

    class CountingLimiter:
        def acquire(self, max_wait_s: float) -> Permit:
            taken.append(max_wait_s)
            return Permit(0.0, 1.0, lambda: 0.0)

        def pause(self, seconds: float) -> None:
            pass

    h = make_client(limiter=CountingLimiter())
    h.adapter.script((503, None), (429, None, {"Retry-After": "1"}), (200, STATUS_BODY))
    h.client.with_rate_wait(3).get_package_status(PACKAGE_ID)
    assert len(taken) == 3
    assert taken[0] == 3


def test_no_token_in_time_defers_and_sends_nothing():
    class EmptyLimiter:
        def acquire(self, max_wait_s: float) -> Permit:
            raise RateLimitDeferred(12.5)

        def pause(self, seconds: float) -> None:
            pass

    h = make_client(limiter=EmptyLimiter())
    with pytest.raises(RateLimitDeferred) as caught:
        h.client.with_rate_wait(0.5).create_package(CREATE_REQUEST)
    assert caught.value.retry_after_s == 12.5
    assert h.adapter.sent == []


def test_a_non_seekable_stream_is_not_resent_once_read():
    class OneShot:
        def __init__(self, data: bytes) -> None:
            self._data = data

        def read(self, size: int = -1) -> bytes:
            chunk, self._data = self._data[:size], self._data[size:]
            return chunk

        def seekable(self) -> bool:
            return False

    h = make_client()
    h.adapter.script((503, None))
    with pytest.raises(TransportError, match="cannot be sent again"):
        h.client.add_document_to_package(PACKAGE_ID, {"document_name": "d"}, OneShot(b"x" * 1000),  # type: ignore[arg-type]
                                         document_length=1000)
    assert len(h.adapter.sent) == 1


def test_retry_after_as_an_http_date():
    from datetime import UTC, datetime

    from shared.connective.retry import retry_after_s

    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert retry_after_s("Thu, 01 Jan 2026 12:00:09 GMT", now=lambda: now) == 9.0
    assert retry_after_s("Thu, 01 Jan 2026 11:00:00 GMT", now=lambda: now) == 0.0
    assert retry_after_s("3.5") == 3.5
    assert retry_after_s("soon") is None and retry_after_s(None) is None


def test_an_error_after_an_unclear_attempt_says_the_call_may_have_been_applied():
    h = make_client()
    h.adapter.script((504, None), (400, {"ErrorCode": "Request.Invalid", "Message": "bad"}))
    with pytest.raises(InvalidRequestError) as caught:
        h.client.expiry_time_stamp(PACKAGE_ID, "2030-01-01T00:00:00Z")
    assert caught.value.possibly_applied
    assert [s.method for s in h.adapter.sent] == ["PUT", "PUT"]


class ScriptedPermits:
    """A limiter handing out permits that are already late (`late` of them), then good ones."""

    def __init__(self, late: int) -> None:
        self.late = late
        self.granted = 0
        self.pauses: list[float] = []

    def acquire(self, max_wait_s: float) -> Permit:
        self.granted += 1
        if self.granted <= self.late:
            return Permit(0.0, 0.05, lambda: 0.3)  # the worker got to the socket 300 ms after the grant
        return Permit(0.0, 0.05, lambda: 0.001)

    def pause(self, seconds: float) -> None:
        self.pauses.append(seconds)


def test_a_permit_that_expired_before_the_send_sends_nothing_and_is_replaced():
    before = counters.totals().get(counters.LATE_PERMIT, 0)
    limiter = ScriptedPermits(late=2)
    h = make_client(limiter=limiter)
    h.adapter.script((200, STATUS_BODY))
    h.client.get_package_status(PACKAGE_ID)
    assert len(h.adapter.sent) == 1
    assert limiter.granted == 3
    assert counters.totals()[counters.LATE_PERMIT] - before == 2


def test_permits_that_keep_expiring_defer_the_call_without_sending():
    h = make_client(limiter=ScriptedPermits(late=100))
    with pytest.raises(RateLimitDeferred):
        h.client.get_package_status(PACKAGE_ID)
    assert h.adapter.sent == []


def test_a_429_is_honoured_counted_and_repeated_once():
    seen: list[tuple[str, dict[str, str]]] = []
    stop = counters.subscribe(lambda name, attributes: seen.append((name, attributes)))
    try:
        limiter = ScriptedPermits(late=0)
        h = make_client(limiter=limiter)
        h.adapter.script((429, None, {"Retry-After": "2"}), (200, STATUS_BODY))
        h.client.with_rate_wait(5).get_package_status(PACKAGE_ID)
    finally:
        stop()
    # Nothing more left this process until Retry-After had passed, then the call went once more.
    assert limiter.pauses == [2.0]
    assert h.clock.sleeps == [2.0]
    assert len(h.adapter.sent) == 2 and limiter.granted == 2
    assert seen == [(counters.THROTTLED, {"operation": "get_package_status"})]


def test_a_deferred_upload_never_opens_its_document():
    opened: list[int] = []

    def open_document() -> io.BytesIO:
        opened.append(1)
        return io.BytesIO(b"%PDF-1.7 " + b"x" * 2000)

    class EmptyLimiter:
        def acquire(self, max_wait_s: float) -> Permit:
            raise RateLimitDeferred(3.0)

        def pause(self, seconds: float) -> None:
            pass

    h = make_client(limiter=EmptyLimiter(), multipart_threshold_bytes=1000)
    with pytest.raises(RateLimitDeferred):
        h.client.add_document_to_package(PACKAGE_ID, {"document_name": "d"}, open_document, document_length=2009)
    assert opened == [] and h.adapter.sent == []
