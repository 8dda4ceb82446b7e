"""Defects an outside attack found, each shown fixed: hostile manifests get a report instead of vanishing,
rows never outgrow Table storage, and rules that held at submission are not applied again later."""

from __future__ import annotations

import base64
import json
import logging
import threading
import types
import uuid
import zlib
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.data.tables import TableClient

from shared.api import create
from shared.config import Settings
from shared.logging import JsonFormatter
from shared.pipeline import creation, intake, spec
from shared.pipeline.pdfcheck import PdfRejected, inspect_pdf
from shared.storage import names
from shared.storage.status import PackageStatus
from shared.webhooks import publish
from shared.webhooks.delivery import deliver
from shared.webhooks.events import EventType
from shared.webhooks.subscriptions import Subscription, package_subscription
from tests.api.conftest import ApiClient
from tests.conftest import SandboxHandle
from tests.pipeline.callback_world import SECRET as CALLBACK_SECRET
from tests.pipeline.callback_world import insert_row, new_ref, store_for, token_for
from tests.pipeline.intake_support import World, base_env, manifest, pdf_with_markers, signer, unique
from tests.webhooks.receiver import running_receiver, take_messages


def batch(world: World, body: dict[str, Any], documents: dict[str, bytes]) -> Any:
    folder = unique("attack")
    for path, data in documents.items():
        world.upload(names.BATCHES_CONTAINER, f"{folder}/{path}", data)
    blob = world.upload(names.BATCHES_CONTAINER, f"{folder}/manifest.json", json.dumps(body).encode())
    return intake.intake_batch_manifest(world.store, world.settings, blob)


def rejected_with_report(world: World, record: Any) -> dict[str, Any]:
    assert record is not None and record.status is PackageStatus.INPUT_REJECTED, record
    report = world.report(record)
    assert [e["kind"] for e in world.store.events.history(record.ref)] == ["input_rejected"]
    return report


PDF = pdf_with_markers("#SIGN1#")  # made once: a PDF's bytes carry the time it was made


def api_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"schemaVersion": "1", "name": "Contract",
                            "documents": [{"content": base64.b64encode(PDF).decode(),
                                           "name": "Contract"}],
                            "signers": [{"name": "Ann Smith", "email": "ann@example.com"}]}
    body.update(overrides)
    return body


def no_staged_copy(api: ApiClient, answer_ref: str) -> bool:
    staging = api.store.clients.container(names.STAGING_CONTAINER)
    return list(staging.list_blobs(name_starts_with=f"{answer_ref}/")) == []


# ---- NUL byte in a signing-field marker ------------------------------------------------------------------

NUL_MARKER = [signer("Anna", "anna@example.com", locations=[{"document": 0, "marker": "#SIGN\u00001#"}])]


def test_a_nul_byte_in_a_marker_is_rejected_with_a_report(world: World) -> None:
    record = batch(world, manifest(["a.pdf"], NUL_MARKER), {"a.pdf": pdf_with_markers("#SIGN1#")})
    report = rejected_with_report(world, record)
    assert report["reason"]["code"] == "schema_invalid"
    assert "control character" in report["reason"]["message"]


def test_a_nul_byte_in_a_marker_never_reaches_the_check_child() -> None:
    document = pdf_with_markers("#SIGN1#")
    facts = inspect_pdf(lambda offset, length: document[offset:offset + length], len(document),
                        ["#SIGN1#", "#A\x00B#", "-not-an-option", "\u00e9\u20ac"])
    assert facts.markers_found == ["#SIGN1#"]


def test_a_nul_byte_in_a_marker_is_a_400_through_the_api(api: ApiClient) -> None:
    key = uuid.uuid4().hex
    body = api_body(signers=[{"name": "Ann Smith", "email": "ann@example.com",
                              "locations": [{"document": 0, "marker": "#SIGN\u00001#"}]}])
    answer = api.call("POST", "/api/packages", body, headers={"Idempotency-Key": key})
    assert answer.status == 400, answer.body[:300]
    assert [e["field"] for e in answer.json()["errors"]] == ["signers[0].locations[0].marker"]


def test_an_unexpected_error_in_intake_becomes_a_report(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug in a check")

    monkeypatch.setattr(intake, "check_explicit_markers", broken)
    record = batch(world, manifest(["a.pdf"], [signer("Anna", "anna@example.com")]),
                   {"a.pdf": pdf_with_markers("#SIGN1#")})
    report = rejected_with_report(world, record)
    assert report["reason"]["code"] == "intake_failed" and "RuntimeError" in report["reason"]["message"]


# ---- control characters in free text that reaches Connective ------------------------------------------

@pytest.mark.parametrize("field, value", [
    ("documentGroupCode", "group\u0007code"), ("documentGroupCode", "line\nbreak"), ("documentGroupCode", "\u009b31m"),
    ("name", "Con\u0085tract"), ("externalReference", "ref\u200e\u202e"), ("correlationId", "a\tb"),
])
def test_control_characters_are_refused_in_free_text(api: ApiClient, field: str, value: str) -> None:
    answer = api.call("POST", "/api/packages", api_body(**{field: value}),
                      headers={"Idempotency-Key": uuid.uuid4().hex})
    assert answer.status == 400, answer.body[:300]
    assert [e["field"] for e in answer.json()["errors"]] == [field]


def test_control_characters_are_refused_in_signer_and_document_text(api: ApiClient) -> None:
    body = api_body(signers=[{"name": "Ann\u0085Smith", "email": "ann@example.com", "externalReference": "x\u2028y"}])
    body["documents"][0]["name"] = "Con\u009ftract"
    answer = api.call("POST", "/api/packages", body, headers={"Idempotency-Key": uuid.uuid4().hex})
    assert answer.status == 400
    assert sorted(e["field"] for e in answer.json()["errors"]) == [
        "documents[0].name", "signers[0].externalReference", "signers[0].name"]


# ---- a row larger than one Table property ------------------------------------------------------------

def crowded_signers() -> list[dict[str, Any]]:
    """30 signers and 20 receivers with the longest names and references the schema allows."""
    people = []
    for index in range(50):
        email = f"{'p' * 54}{index:02d}@{'d' * 60}.{'e' * 60}.example.com"
        person = signer(f"{'Name ' * 39}{index:03d}", email, order=1 + index % 5,
                        externalReference=f"{index:03d}" + "r" * 197)
        if index >= 30:
            person["type"] = "Receiver"
        people.append(person)
    return people


def test_a_valid_package_larger_than_one_table_property_is_accepted(world: World) -> None:
    body = manifest(["a.pdf"], crowded_signers(), externalReference="x" * 200)
    record = batch(world, body, {"a.pdf": pdf_with_markers("#SIGN1#")})
    assert record is not None and record.status is PackageStatus.RECEIVED, record.final_reason
    again = world.row(record.ref)
    assert len(again.spec["request"]["signers"]) == 50 and len(again.signers) == 50
    assert len(json.dumps(again.spec)) > 32_768  # more than one property could hold


def test_a_valid_package_larger_than_one_table_property_is_accepted_by_the_api(api: ApiClient) -> None:
    answer = api.call("POST", "/api/packages", api_body(signers=crowded_signers()),
                      headers={"Idempotency-Key": uuid.uuid4().hex})
    assert answer.status == 202, answer.body[:300]


# ---- the PDF check: memory bombs, budgets and what reaches the logs -------------------------------------

def bomb_pdf(streams: int = 25, stream_mb: int = 70) -> bytes:
    """A small PDF whose page draws `streams` content streams of `stream_mb` MB each once inflated.

    The deflated stream is made once (zeros deflate about 1000:1) and repeated under distinct object
    numbers, so the file costs a few MB to build while a parser would inflate every copy.
    """
    squeezer = zlib.compressobj(9)
    chunk = b" " * (1024 * 1024)
    deflated = b"".join(squeezer.compress(chunk) for _ in range(stream_mb)) + squeezer.flush()
    content_numbers = list(range(4, 4 + streams))
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>",
               b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 << /Type /Font "
               b"/Subtype /Type1 /BaseFont /Helvetica >> >> >> /Contents ["
               + b" ".join(b"%d 0 R" % n for n in content_numbers) + b"] >>"]
    objects += [b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(deflated) + deflated + b"\nendstream"
                for _ in content_numbers]
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def test_a_memory_bomb_pdf_is_rejected_by_the_decoded_bytes_budget() -> None:
    document = bomb_pdf()
    assert len(document) < 3 * 1024 * 1024
    with pytest.raises(PdfRejected) as rejected:
        inspect_pdf(lambda offset, length: document[offset:offset + length], len(document), ["#SIGN1#"])
    assert rejected.value.code == "pdf_too_complex"


def test_the_memory_bomb_is_rejected_the_same_way_however_slow_the_machine() -> None:
    """No time budget decides: with reads slowed down the outcome is the same rejection, not an acceptance."""
    document = bomb_pdf(streams=3, stream_mb=60)

    def slow_reads(offset: int, length: int) -> bytes:
        import time
        time.sleep(0.002)
        return document[offset:offset + length]

    with pytest.raises(PdfRejected) as rejected:
        inspect_pdf(slow_reads, len(document), ["#SIGN1#"])
    assert rejected.value.code == "pdf_too_complex"


def test_parser_messages_that_quote_the_document_never_reach_logs_or_reports(
        world: World, caplog: pytest.LogCaptureFixture) -> None:
    canary = b"CANARY-7f3a9b"
    # pypdf's message for this damage quotes the bytes around it (the catalogue object is not an object).
    objects = [canary + b" " + canary, b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               b"<< /Type /Page /MediaBox [0 0 595 842] /Parent 2 0 R >>"]
    out = bytearray(b"%PDF-1.7\n%" + b"-" * 200 + b"\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 4\n0000000000 65535 f \n" + b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size 4 /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % xref
    document = bytes(out)
    caplog.set_level(logging.DEBUG)
    blob = world.upload(names.INBOX_CONTAINER, f"{unique()}.pdf", document,
                        metadata={"signers": "Anna <anna@example.com>"})
    record = intake.intake_inbox_blob(world.store, world.settings, blob)
    report = rejected_with_report(world, record)
    assert report["reason"]["code"] == "pdf_corrupt"
    logged = "\n".join(JsonFormatter().format(entry) for entry in caplog.records)
    assert "intake.rejected" in logged and canary.decode() not in logged
    assert canary.decode() not in json.dumps(report) and canary.decode() not in (record.final_reason or "")


# ---- expiresAt that passes before creation runs ----------------------------------------------------------

def _row_with_expiry(world: World, expires_at: datetime) -> Any:
    """A Received row whose expiresAt was in the future when it was accepted, set to `expires_at` since."""
    body = manifest(["a.pdf"], [signer("Anna", "anna@example.com")],
                    expiresAt=(datetime.now(UTC) + timedelta(days=1)).isoformat())
    record = batch(world, body, {"a.pdf": pdf_with_markers("#SIGN1#")})
    assert record is not None and record.status is PackageStatus.RECEIVED, record and record.final_reason

    def age(row: Any) -> bool:
        row.spec["request"]["expiresAt"] = expires_at.isoformat()
        return True

    world.store.packages.mutate(record.ref, age)
    return record


def test_an_expiry_that_passed_while_waiting_refuses_the_input_instead_of_retrying_for_ever(
        storage_connection_string: str, sandbox: SandboxHandle) -> None:
    world = World(base_env(storage_connection_string, sandbox))
    record = _row_with_expiry(world, datetime.now(UTC) - timedelta(minutes=1))
    outcome = creation.create(record.ref, store=world.store, settings=world.settings, client=world.client)
    assert outcome is creation.Outcome.REJECTED
    row = world.row(record.ref)
    assert row.status is PackageStatus.INPUT_REJECTED and world.report(row)["reason"]["code"] == "expiry_passed"


def test_creation_does_not_apply_the_submission_rule_to_a_stored_expiry(
        storage_connection_string: str, sandbox: SandboxHandle, monkeypatch: pytest.MonkeyPatch) -> None:
    """Valid at submission, valid at creation: the stored request is read back without re-checking the clock."""
    world = World(base_env(storage_connection_string, sandbox))
    expires_at = datetime.now(UTC) + timedelta(hours=2)
    record = _row_with_expiry(world, expires_at)
    real = spec.PackageRequest.model_validate

    def strict_clock(data: Any, **kwargs: Any) -> Any:  # a clock that says the expiry has passed, while validating
        if (kwargs.get("context") or {}).get(spec.STORED):
            return real(data, **kwargs)
        raise AssertionError("creation validated the stored request as a new submission")

    monkeypatch.setattr(spec.PackageRequest, "model_validate", strict_clock)
    outcome = creation.create(record.ref, store=world.store, settings=world.settings, client=world.client)
    assert outcome is creation.Outcome.CREATED and world.row(record.ref).status is PackageStatus.PENDING


# ---- callbacks: token first, bodies capped, floods never 500 ---------------------------------------------

def _callback(ref: str, token: str, body: bytes, function: str = "connective_callback") -> Any:
    import azure.functions as func

    import functions.callbacks as routes

    request = func.HttpRequest(method="POST", url=f"http://127.0.0.1/api/callbacks/connective/{ref}/{token}",
                               headers={"Content-Type": "application/json"}, params={},
                               route_params={"packageRef": ref, "token": token}, body=body)
    context = types.SimpleNamespace(invocation_id=uuid.uuid4().hex, function_name=function)
    return getattr(routes, function)(request, context)


@pytest.fixture()
def callback_env(monkeypatch: pytest.MonkeyPatch, storage_connection_string: str, sandbox: SandboxHandle) -> Any:
    env = {"DocumentStorage": storage_connection_string, "CONNECTIVE_BASE_URL": sandbox.base_url,
           "CONNECTIVE_USERNAME": sandbox.user, "CONNECTIVE_PASSWORD": sandbox.password,
           "CALLBACK_SECRETS": CALLBACK_SECRET, "STATUS_REFRESH_DELAY_S": "30"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


def watch_body_reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of each callback body parsed from now on."""
    import shared.pipeline.callbacks as service

    looked_at: list[int] = []
    real = service.parse_body
    monkeypatch.setattr(service, "parse_body", lambda body: looked_at.append(len(body or b"")) or real(body))
    return looked_at


@pytest.mark.parametrize("function", ["connective_callback", "connective_link_request"])
def test_a_wrong_token_is_refused_before_the_body_is_looked_at(callback_env: Any, storage_connection_string: str,
                                                               monkeypatch: pytest.MonkeyPatch, function: str) -> None:
    looked_at = watch_body_reads(monkeypatch)
    ref = new_ref()
    insert_row(store_for(storage_connection_string), ref, "pkg")
    answer = _callback(ref, "0" * 64, b'{"PackageStatus": "Finished", "pad": "' + b"x" * (8 * 1024 * 1024) + b'"}',
                       function)
    assert answer.status_code == 401 and looked_at == []


@pytest.mark.parametrize("function", ["connective_callback", "connective_link_request"])
def test_a_callback_body_over_64_kb_is_413_unread(callback_env: Any, storage_connection_string: str,
                                                 monkeypatch: pytest.MonkeyPatch, function: str) -> None:
    looked_at = watch_body_reads(monkeypatch)
    store = store_for(storage_connection_string)
    ref = new_ref()
    insert_row(store, ref, "pkg")
    answer = _callback(ref, token_for(ref), b'{"pad": "' + b"x" * (65 * 1024) + b'"}', function)
    assert answer.status_code == 413 and looked_at == []
    row = store.packages.get(ref)
    assert row is not None and row.callback_count == 0
    assert _callback(ref, token_for(ref), b'{"PackageStatus": "Pending"}', function).status_code == 200


def test_a_flood_of_callbacks_on_one_package_never_answers_500(callback_env: Any,
                                                               storage_connection_string: str) -> None:
    """200 callbacks, 32 at a time: each is recorded (200) or asked to come back (503 + Retry-After)."""
    store = store_for(storage_connection_string)
    ref = new_ref()
    insert_row(store, ref, "pkg")
    body = b'{"PackageStatus": "Pending", "ActorId": "a1"}'
    with ThreadPoolExecutor(max_workers=32) as pool:
        answers = list(pool.map(lambda _: _callback(ref, token_for(ref), body), range(200)))
    statuses = Counter(answer.status_code for answer in answers)
    assert set(statuses) <= {200, 503}, statuses
    assert all(a.headers.get("Retry-After") for a in answers if a.status_code == 503)
    assert statuses[200] >= 1
    row = store.packages.get(ref)
    assert row is not None and row.last_callback_at is not None and row.status_refresh_due_at is not None
    received = [e for e in store.events.history(ref) if e["kind"] == "callback_received"]
    assert len(received) >= statuses[200]  # each recorded callback is in the history


# ---- idempotency: reserved before any side effect, bodies compared ---------------------------------------

def test_an_idempotency_key_reused_with_a_different_body_is_409(api: ApiClient) -> None:
    key = uuid.uuid4().hex
    first = api.call("POST", "/api/packages", api_body(), headers={"Idempotency-Key": key})
    assert first.status == 202
    other = api.call("POST", "/api/packages", api_body(name="Another contract"), headers={"Idempotency-Key": key})
    assert other.status == 409 and "Idempotency-Key" in other.json()["detail"]
    again = api.call("POST", "/api/packages", api_body(), headers={"Idempotency-Key": key})
    assert again.status == 202 and again.json()["packageRef"] == first.json()["packageRef"]


class HeldCheck:
    """Holds the first request inside its document check until released, so a second one can race it."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.inside = threading.Event()
        self.release = threading.Event()
        self._real = create.check_document
        self._held = False
        monkeypatch.setattr(create, "check_document", self._check)

    def _check(self, *args: Any, **kwargs: Any) -> Any:
        if not self._held:
            self._held = True
            self.inside.set()
            assert self.release.wait(60)
        return self._real(*args, **kwargs)


def _race(api: ApiClient, monkeypatch: pytest.MonkeyPatch, second_body: dict[str, Any]) -> tuple[Any, Any, str]:
    held = HeldCheck(monkeypatch)
    key = uuid.uuid4().hex
    with ThreadPoolExecutor(max_workers=1) as pool:
        first = pool.submit(api.call, "POST", "/api/packages", api_body(), headers={"Idempotency-Key": key})
        assert held.inside.wait(60)
        second = api.call("POST", "/api/packages", second_body, headers={"Idempotency-Key": key})
        held.release.set()
        return first.result(), second, key


def test_a_retry_racing_the_first_request_never_makes_either_fail(api: ApiClient,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    first, second, _ = _race(api, monkeypatch, api_body())
    assert first.status == 202, first.body[:300]
    assert second.status in (202, 409), second.body[:300]
    if second.status == 409:
        assert second.headers.get("Retry-After")
    ref = first.json()["packageRef"]
    row = api.store.packages.get(ref)
    assert row is not None and row.status is PackageStatus.RECEIVED
    assert not no_staged_copy(api, ref)


def test_an_invalid_request_racing_a_valid_one_leaves_its_document_alone(api: ApiClient,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    invalid = api_body(documents=[{"content": base64.b64encode(b"not a pdf").decode(), "name": "Contract"}])
    first, second, _ = _race(api, monkeypatch, invalid)
    assert second.status == 409, second.body[:300]
    assert first.status == 202, first.body[:300]
    ref = first.json()["packageRef"]
    row = api.store.packages.get(ref)
    assert row is not None and row.status is PackageStatus.RECEIVED
    document = row.spec["documents"][0]
    staged = api.store.clients.container(document["container"]).get_blob_client(document["blob"])
    assert staged.get_blob_properties().etag == document["etag"]  # the document creation will send is intact


# ---- webhooks: signing links, package-scoped subscriptions ----------------------------------------------

def _package_with_subscriber(store: Any, url: str) -> str:
    ref = new_ref()
    insert_row(store, ref, "pkg")
    store.packages.mutate(ref, lambda row: setattr(row, "subscribers", [url]) or True)
    return ref


def test_a_signing_link_goes_only_to_subscriptions_an_operator_created(storage_connection_string: str) -> None:
    store = store_for(storage_connection_string)
    ref = _package_with_subscriber(store, "https://uploader.example.com/hook")
    operator = publish.subscriptions(store).add(Subscription(url="https://operator.example.com/hook",
                                                             events=[EventType.LINK_REQUESTED], package_ref=ref))
    publish.publish_event(store, EventType.LINK_REQUESTED, ref, {"email": "ann@example.com", "actorId": "a1",
                                                                 "actionUrl": "https://sign.example.com/secret"})
    named = package_subscription(ref, "https://uploader.example.com/hook")
    to_uploader = take_messages(store, named.id)
    to_operator = take_messages(store, operator.id)
    assert [m["event"]["data"] for m in to_uploader] == [{"email": "ann@example.com", "actorId": "a1"}]
    assert [m["event"]["data"]["actionUrl"] for m in to_operator] == ["https://sign.example.com/secret"]


def test_a_finished_packages_subscriptions_are_removed_after_its_last_event(storage_connection_string: str) -> None:
    with running_receiver() as receiver:
        _retire_and_still_deliver(storage_connection_string, receiver)


def _retire_and_still_deliver(storage_connection_string: str, receiver: Any) -> None:
    store = store_for(storage_connection_string)
    ref = _package_with_subscriber(store, receiver.url)
    repository = publish.subscriptions(store)
    operator = repository.add(Subscription(url=receiver.url, events=list(EventType), package_ref=ref))
    everyone = repository.add(Subscription(url=receiver.url, events=[EventType.ARCHIVED]))
    publish.publish_event(store, EventType.ARCHIVED, ref, {"archiveLocation": "x", "files": []})
    named = package_subscription(ref, receiver.url)
    assert repository.get(named.id, ref) is None
    # An operator's subscriptions stay until the operator (or its flow) removes them.
    assert repository.get(operator.id, ref) is not None and repository.get(everyone.id) is not None
    # The last event still reaches the removed subscriptions: their messages carry what delivery needs.
    settings = Settings({"DocumentStorage": storage_connection_string, "WEBHOOK_SIGNING_SECRET": "whsec-0123456789",
                         "WEBHOOK_ALLOW_LOOPBACK": "true"})
    for subscription_id in (named.id, operator.id):
        [message] = take_messages(store, subscription_id)
        assert deliver(settings, store, message).outcome.value == "delivered"
    repository.remove(everyone.id)
    repository.remove(operator.id)


def test_publishing_reads_the_packages_own_index_never_the_whole_table(storage_connection_string: str,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    store = store_for(storage_connection_string)
    for _ in range(3):
        other = _package_with_subscriber(store, "https://other.example.com/hook")
        publish.publish_event(store, EventType.STATUS_CHANGED, other, {"status": "Pending"})
    ref = _package_with_subscriber(store, "https://mine.example.com/hook")
    filters: list[str] = []
    read: list[str] = []
    real = TableClient.query_entities

    def recorded(self: Any, query_filter: str, **kwargs: Any) -> Any:
        filters.append(query_filter)
        for entity in real(self, query_filter, **kwargs):
            if self.table_name == names.SUBSCRIPTIONS_TABLE:
                read.append(entity.get("PackageRef") or "")
            yield entity

    monkeypatch.setattr(TableClient, "query_entities", recorded)
    monkeypatch.setattr(TableClient, "list_entities", lambda *a, **k: pytest.fail("a full table scan"))
    publish.publish_event(store, EventType.STATUS_CHANGED, ref, {"status": "Pending"})
    assert filters and all(f.startswith("PartitionKey eq @") for f in filters), filters
    assert set(read) <= {"", ref}, "other packages' subscriptions were read"
    assert len(take_messages(store, package_subscription(ref, "https://mine.example.com/hook").id)) == 1
