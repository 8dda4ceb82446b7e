"""Upload bodies (base64 JSON or streamed multipart), streamed downloads, the per-call log line and redaction."""

from __future__ import annotations

import base64
import email.parser
import hashlib
import io
import json
import logging
import threading
import time
from typing import Any

import pytest

from shared.connective import LocalRateLimiter, RateLimitDeferred, TransportError
from shared.connective.ratelimit import Permit
from shared.logging import JsonFormatter, install_redaction, package_scope
from tests.client.fakes import PASSWORD, USER, make_client, response
from tests.limiter.windows import most_in_any_window

PACKAGE_ID = "5d1c0d7e-1111-4222-8333-944455556666"
ADDED = {"DocumentId": "d1", "CreationTimestamp": "2019-03-28T08:54:38+00:00",
         "Locations": [{"Id": "l1", "Label": "SIG01", "PageNumber": 1}]}


def multipart_parts(sent) -> dict[str, tuple[str, bytes]]:
    message = email.parser.BytesParser().parsebytes(
        f"Content-Type: {sent.headers['Content-Type']}\r\n\r\n".encode() + sent.body)
    assert message.is_multipart()
    return {part.get_param("name", header="content-disposition"): (part.get_content_type(),
                                                                   part.get_payload(decode=True))
            for part in message.get_payload()}


def test_small_documents_go_as_base64_json():
    h = make_client()
    h.adapter.script((200, ADDED))
    added = h.client.add_document_to_package(PACKAGE_ID, {"document_name": "doc", "document_language": "en"},
                                             b"%PDF-1.4 small")
    assert added.locations[0].id == "l1"
    sent = h.adapter.sent[0]
    assert sent.url.endswith(f"/webportalapi/v3/packages/{PACKAGE_ID}/documents")
    assert sent.headers["Content-Type"].startswith("application/json")
    assert json.loads(sent.body) == {"DocumentName": "doc", "DocumentLanguage": "en",
                                     "Document": base64.b64encode(b"%PDF-1.4 small").decode()}


def test_large_documents_and_streams_go_as_multipart_and_are_rewound_for_a_retry():
    h = make_client(multipart_threshold_bytes=1000)
    h.adapter.script((503, None), (200, ADDED))
    document = io.BytesIO(b"HEADER" + b"%PDF-1.4 " + bytes(range(256)) * 40)
    document.read(6)  # the upload starts at the stream's position
    h.client.add_document_to_package(PACKAGE_ID, {"document_name": "big", "signing_fields": [
        {"marker_or_field_id": "SIG01", "label": "SIG01"}]}, document)
    assert len(h.adapter.sent) == 2
    for sent in h.adapter.sent:
        parts = multipart_parts(sent)
        assert parts["Data"][0] == "application/json"
        assert json.loads(parts["Data"][1]) == {"DocumentName": "big", "SigningFields": [
            {"MarkerOrFieldId": "SIG01", "Label": "SIG01"}]}
        assert parts["Document"] == ("application/pdf", b"%PDF-1.4 " + bytes(range(256)) * 40)
        assert int(sent.headers["Content-Length"]) == len(sent.body)


def test_instant_package_from_a_stream_opener():
    h = make_client()
    h.adapter.script((200, {"PackageId": "p1", "PackageStatus": "Pending", "PackageDocuments": [], "Stakeholders": []}))
    instant = h.client.create_instant_package(
        {"initiator": "a@b.c", "document_name": "doc", "external_package_reference": "ref-9"},
        lambda: io.BytesIO(b"%PDF-1.4 from blob"), document_length=len(b"%PDF-1.4 from blob"))
    assert instant.package_id == "p1"
    parts = multipart_parts(h.adapter.sent[0])
    assert json.loads(parts["Data"][1])["ExternalPackageReference"] == "ref-9"
    assert parts["Document"][1] == b"%PDF-1.4 from blob"


def test_downloads_stream_to_a_writable_in_chunks():
    h = make_client(download_chunk_bytes=1000)
    payload = bytes(range(256)) * 100

    class Target:
        def __init__(self) -> None:
            self.writes: list[int] = []
            self.data = bytearray()

        def write(self, chunk: bytes) -> int:
            self.writes.append(len(chunk))
            self.data += chunk
            return len(chunk)

    h.adapter.script((200, payload, {"Content-Type": "application/pdf"}))
    target = Target()
    result = h.client.download_document_from_package(PACKAGE_ID, "doc-1", target)
    assert bytes(target.data) == payload
    assert max(target.writes) <= 1000 and len(target.writes) == 26
    assert result.bytes_written == len(payload) and result.sha256 == hashlib.sha256(payload).hexdigest()
    assert result.content_type == "application/pdf"
    assert h.adapter.sent[0].headers["Accept"] == "*/*"


def test_download_without_a_target_is_an_iterator_of_chunks():
    h = make_client(download_chunk_bytes=4)
    h.adapter.script((200, b"<uploads/>", {"Content-Type": "application/xml"}))
    with h.client.package_audit_proof(PACKAGE_ID) as download:
        assert b"".join(download) == b"<uploads/>"
    assert h.adapter.sent[0].url.endswith(f"/packages/{PACKAGE_ID}/auditproof/download")


def test_a_truncated_download_is_a_transport_error():
    h = make_client()
    h.adapter.script(lambda request: response(request, 200, b"short", {"Content-Length": "100"}))
    with pytest.raises(TransportError, match=r"download (broke off|ended) after"):
        h.client.download_package(PACKAGE_ID, io.BytesIO())


def test_one_log_line_per_attempt_and_no_secret_or_document_bytes_in_any_log():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    install_redaction(handler)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    document = b"%PDF-1.4 CONFIDENTIAL-DOCUMENT-MARKER " * 50
    try:
        h = make_client(multipart_threshold_bytes=1000)
        h.adapter.script(
            (503, {"ErrorCode": "Busy", "Message": "later"}), (200, ADDED),
            (200, ADDED),
            (401, {"ErrorCode": "Auth.Failed", "Message": "bad credentials"}),
        )
        with package_scope("ref-42"):
            h.client.add_document_to_package(PACKAGE_ID, {"document_name": "d"}, document[:200])
            h.client.add_document_to_package(PACKAGE_ID, {"document_name": "d"}, io.BytesIO(document))
            with pytest.raises(Exception, match="401"):
                h.client.get_package_status(PACKAGE_ID)
        with pytest.raises(RateLimitDeferred):
            _exhausted_client().get_package_status(PACKAGE_ID)
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    output = stream.getvalue()
    basic_token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    for secret in (PASSWORD, basic_token, "CONFIDENTIAL-DOCUMENT-MARKER",
                   base64.b64encode(document[:200]).decode()[:40], base64.b64encode(document).decode()[:40]):
        assert secret not in output
    lines = [json.loads(line) for line in output.splitlines() if '"connective.call"' in line]
    assert len(lines) == 4  # 503 + 200, 200, 401
    first, second, _, last = lines
    assert first["level"] == "WARNING" and first["status"] == 503 and first["attempt"] == 1
    assert first["error_code"] == "Busy" and first["retry_in_s"] is not None
    assert second["status"] == 200 and second["attempt"] == 2
    assert second["operation"] == "add_document_to_package" and second["method"] == "POST"
    assert second["path"] == "/packages/{package_id}/documents" and second["package_id"] == PACKAGE_ID
    assert second["package_ref"] == "ref-42" and isinstance(second["duration_ms"], float)
    assert last["status"] == 401 and last["error_code"] == "Auth.Failed"
    deferred = [json.loads(line) for line in output.splitlines() if '"connective.deferred"' in line]
    assert len(deferred) == 1 and deferred[0]["operation"] == "get_package_status"
    assert deferred[0]["retry_after_s"] > 59


def _exhausted_client():
    limiter = LocalRateLimiter(1, 60)
    limiter.acquire(0)
    return make_client(limiter=limiter).client.with_rate_wait(0)


class RecordingLimiter:
    """Hands out the permits of a real limiter and keeps them, so a test can see each call's slot."""

    def __init__(self, inner: LocalRateLimiter) -> None:
        self.inner = inner
        self.permits: list[Permit] = []
        self._lock = threading.Lock()

    def acquire(self, max_wait_s: float) -> Permit:
        permit = self.inner.acquire(max_wait_s)
        with self._lock:
            self.permits.append(permit)
        return permit

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_the_limiter_holds_the_budget_under_concurrent_threads():
    calls, window_s = 10, 0.5
    limiter = RecordingLimiter(LocalRateLimiter(calls, window_s))
    h = make_client(limiter=limiter)
    h.adapter.default = (200, {"PackageStatus": "Pending"})
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for _ in range(4):
                h.client.get_package_status(PACKAGE_ID)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors
    assert len(h.adapter.sent) == 32
    # Every request went out on a permit that said "go" (a permit left too late on a loaded machine
    # is void, and the client takes another); the slots those permits were counted at keep the rule.
    # Slots, not the moments the fake server saw the requests: a descheduled thread records late.
    sent = [permit.counted_at for permit in limiter.permits if permit.delay_s is not None
            and permit.delay_s <= permit.send_by - permit.counted_at]
    assert len(sent) == 32
    assert most_in_any_window(sent, window_s) <= calls
    assert time.monotonic() - started >= 3 * window_s * 0.99


def test_a_short_rate_wait_defers_instead_of_sleeping_while_others_hold_the_budget():
    sleeps: list[float] = []
    h = make_client(limiter=LocalRateLimiter(3, 30, sleep=sleeps.append))
    h.adapter.default = (200, {"PackageStatus": "Pending"})
    for _ in range(3):
        h.client.get_package_status(PACKAGE_ID)
    queue_client = h.client.with_rate_wait(0.2)
    assert queue_client.session is h.client.session and queue_client.limiter is h.client.limiter
    with pytest.raises(RateLimitDeferred) as caught:
        queue_client.get_package_status(PACKAGE_ID)
    assert sleeps == []
    assert 29 < caught.value.retry_after_s <= 30.5
    assert len(h.adapter.sent) == 3


def test_a_streamed_multipart_body_declares_its_length_and_arrives_whole():
    """Sent in large blocks, never with chunked transfer encoding (Connective expects a Content-Length)."""
    h = make_client(multipart_threshold_bytes=1000)
    h.adapter.script((200, ADDED))
    document = b"%PDF-1.4 " + bytes(range(256)) * 12_000  # 3 MB: several send blocks
    h.client.add_document_to_package(PACKAGE_ID, {"document_name": "big"}, io.BytesIO(document))
    sent = h.adapter.sent[0]
    assert "Transfer-Encoding" not in sent.headers
    assert sent.headers["Content-Length"] == str(len(sent.body))
    assert multipart_parts(sent)["Document"] == ("application/pdf", document)


def test_a_document_source_that_fails_mid_upload_fails_the_call_and_stops_reading_ahead():
    class FailingAfter(io.RawIOBase):
        def __init__(self) -> None:
            self.served = 0

        def readable(self) -> bool:
            return True

        def readinto(self, buffer) -> int:
            if self.served >= 3_000_000:
                raise OSError("the source broke")
            buffer[:len(buffer)] = b"x" * len(buffer)
            self.served += len(buffer)
            return len(buffer)

    h = make_client(multipart_threshold_bytes=1000)
    h.adapter.script((200, ADDED))
    with pytest.raises(OSError, match="the source broke"):
        h.client.add_document_to_package(PACKAGE_ID, {"document_name": "big"}, lambda: FailingAfter(),
                                         document_length=10_000_000)
    deadline = time.monotonic() + 30  # bounds a broken run only
    while any(t.name == "upload-read-ahead" for t in threading.enumerate()) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not any(t.name == "upload-read-ahead" for t in threading.enumerate())
