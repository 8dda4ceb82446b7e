"""The bad-input catalogue (docs/BAD_INPUT.md): the entries the owners' own tests do not cover.

Each case asserts the clear error (the reason code of the error report, or the HTTP status and the
problem+json detail) and that the system stays consistent: the original input is kept unchanged,
no stray row, queue message or staged blob is left, nothing reached Connective, and a good input
right after still goes through. Everything runs against real Azurite (and the sandbox where a
callback needs Connective); no host is needed here.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import types
import uuid
from typing import Any

import azure.functions as func
import pytest
from pypdf import PdfWriter

from shared.config import Settings
from shared.pipeline import intake
from shared.pipeline.callbacks import CallbackClaim, Outcome, claim_from_request, handle_callback, handle_link_request
from shared.storage import names
from shared.storage.packages import PackageRecord
from shared.storage.status import PackageStatus
from shared.webhooks.delivery import deliver
from shared.webhooks.publish import EventType, publish_event, subscriptions
from shared.webhooks.subscriptions import Subscription
from tests.api.conftest import ApiClient
from tests.conftest import SandboxHandle
from tests.pipeline.callback_world import client_for, env_for, insert_row, new_ref, settings_for, store_for, token_for
from tests.pipeline.intake_support import World, base_env, manifest, pdf_with_markers, signer, unique
from tests.webhooks.receiver import Receiver, running_receiver, take_messages
from tests.webhooks.verify import verifies

SIGNERS = {"signers": "Anna Peeters <anna@example.com>"}


# ---- consistency checks shared by the blob cases ---------------------------------------------------------

def assert_rejected(world: World, record: PackageRecord | None, code: str, container: str, name: str,
                    etag: str) -> dict[str, Any]:
    """InputRejected with `code`, one report, one event, the original untouched, nothing queued."""
    assert record is not None and record.status is PackageStatus.INPUT_REJECTED, record
    report = world.report(record)
    assert report["reason"]["code"] == code, report["reason"]
    assert report["reason"]["message"] and report["packageRef"] == record.ref
    assert report["input"]["name"] == name
    original = world.store.clients.container(container).get_blob_client(name).get_blob_properties()
    assert original.etag == etag  # kept, and never modified (a change would trigger it again)
    assert [event["kind"] for event in world.store.events.history(record.ref)] == ["input_rejected"]
    assert record.ref not in world.queued_refs() and record.connective_package_id is None
    return report


def upload(world: World, container: str, name: str, data: bytes, **kwargs: Any) -> tuple[Any, str]:
    blob = world.store.clients.container(container).get_blob_client(name)
    etag = blob.upload_blob(data, overwrite=True, **kwargs)["etag"]
    return blob, etag


def assert_good_inbox_input_goes_through(world: World) -> None:
    blob, _ = upload(world, names.INBOX_CONTAINER, f"after-bad/{unique()}.pdf", pdf_with_markers("#SIGN1#"),
                     metadata=SIGNERS)
    record = intake.intake_inbox_blob(world.store, world.settings, blob)
    assert record is not None and record.status is PackageStatus.RECEIVED and record.ref in world.queued_refs()


# ---- blob intake: inbox PDFs -----------------------------------------------------------------------------

def _pdf(width: float = 595, height: float = 842, pages: int = 1) -> bytes:
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=width, height=height)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


INBOX_CASES: dict[str, tuple[str, bytes, dict[str, str], dict[str, Any]]] = {
    # case: (reason code, bytes, metadata, upload options)
    "pdf-content-type-on-a-zip": ("not_a_pdf", b"PK\x03\x04 not a pdf", SIGNERS,
                                  {"content_settings": __import__("azure.storage.blob", fromlist=["x"])
                                   .ContentSettings(content_type="application/pdf")}),
    "pdf-without-pages": ("pdf_no_pages", _pdf(pages=0), SIGNERS, {}),
    "page-larger-than-3.99-m": ("pdf_page_size", _pdf(width=12000, height=842), SIGNERS, {}),
    "metadata-not-percent-encoded-utf8": ("metadata_invalid", pdf_with_markers(),
                                          {"signers": "Ren%FF <rene@example.com>"}, {}),
    "metadata-signers-json-wrong-types": ("signer_email_invalid", pdf_with_markers(),
                                          {"signers": '[{"name": "Anna", "email": 42}]'}, {}),
    "metadata-expirydays-not-a-number": ("metadata_invalid", pdf_with_markers(), {**SIGNERS, "expirydays": "soon"}, {}),
    "metadata-expirydays-huge": ("schema_invalid", pdf_with_markers(), {**SIGNERS, "expirydays": "9" * 400}, {}),
    "metadata-unknown-profile": ("profile_unknown", pdf_with_markers(), {**SIGNERS, "profile": "../../etc"}, {}),
}


@pytest.mark.parametrize("case", sorted(INBOX_CASES))
def test_bad_inbox_inputs(world: World, case: str) -> None:
    code, data, metadata, options = INBOX_CASES[case]
    name = f"catalogue/{unique(case)}.pdf"
    blob, etag = upload(world, names.INBOX_CONTAINER, name, data, metadata=metadata, **options)
    record = intake.intake_inbox_blob(world.store, world.settings, blob)
    assert_rejected(world, record, code, names.INBOX_CONTAINER, name, etag)


def test_a_pdf_labelled_text_plain_is_judged_by_its_bytes(world: World) -> None:
    from azure.storage.blob import ContentSettings

    blob, _ = upload(world, names.INBOX_CONTAINER, f"{unique()}.txt", pdf_with_markers("#SIGN1#"), metadata=SIGNERS,
                     content_settings=ContentSettings(content_type="text/plain"))
    record = intake.intake_inbox_blob(world.store, world.settings, blob)
    assert record is not None and record.status is PackageStatus.RECEIVED


@pytest.mark.parametrize("name", [
    "ctl/a\x07bell\x1b[31m-red.pdf",  # control characters, an ANSI escape among them
    "rtl/invoice-\u202efdp.exe.pdf",  # right-to-left override
    "dots/..\\..\\win.pdf",  # backslashes are plain characters in a blob name
    "keys/a#b?c'd or 1 eq 1.pdf",  # characters Table keys forbid, and OData
])
def test_odd_blob_names_give_a_safe_report_and_package_name(world: World, name: str) -> None:
    bad, etag = upload(world, names.INBOX_CONTAINER, name, b"not a pdf", metadata=SIGNERS)
    record = intake.intake_inbox_blob(world.store, world.settings, bad)
    report = assert_rejected(world, record, "not_a_pdf", names.INBOX_CONTAINER, name, etag)
    assert report["input"]["name"] == name  # the report names the input exactly, inside JSON
    assert record is not None and record.error_report is not None
    assert all(ch not in record.error_report for ch in "\x07\x1b\u202e\\#?'"), record.error_report
    good, _ = upload(world, names.INBOX_CONTAINER, name.replace("catalogue", "ok") + ".pdf",
                     pdf_with_markers(), metadata=SIGNERS)
    accepted = intake.intake_inbox_blob(world.store, world.settings, good)
    assert accepted is not None and accepted.status is PackageStatus.RECEIVED
    package_name = accepted.spec["request"]["name"]
    assert not any(ch in package_name for ch in "\x07\x1b/\\?'"), package_name


# ---- blob intake: batch manifests -----------------------------------------------------------------------

def _manifest(**changes: Any) -> dict[str, Any]:
    body = manifest(["a.pdf"], [signer("Anna", "anna@example.com")])
    body.update(changes)
    return body


def _json(body: Any) -> bytes:
    return json.dumps(body).encode()


def _one_signer(**location: Any) -> list[dict[str, Any]]:
    return [signer("Anna", "anna@example.com", locations=[{"document": 0, **location}])]


MANIFEST_CASES: dict[str, tuple[str, bytes]] = {
    "path-absolute": ("document_path_invalid", _json(_manifest(documents=[{"path": "/etc/passwd"}]))),
    "path-backslash": ("document_path_invalid", _json(_manifest(documents=[{"path": "..\\other\\a.pdf"}]))),
    "path-control-character": ("document_path_invalid", _json(_manifest(documents=[{"path": "a\x00.pdf"}]))),
    "path-empty-segment": ("document_path_invalid", _json(_manifest(documents=[{"path": "sub//a.pdf"}]))),
    "path-dot-segment": ("document_path_invalid", _json(_manifest(documents=[{"path": "./a.pdf"}]))),
    "path-the-manifest-itself": ("document_path_invalid", _json(_manifest(documents=[{"path": "manifest.json"}]))),
    "nan-number": ("manifest_not_json", _json(_manifest()).replace(b'"order": 1', b'"order": NaN')),
    "utf16-text": ("manifest_not_utf8", json.dumps(_manifest()).encode("utf-16")),
    "over-1-mb": ("manifest_too_large", _json(_manifest(externalReference="x" * (1024 * 1024)))),
    "top-level-array": ("schema_invalid", _json([_manifest()])),
    "wrong-type-documents-string": ("schema_invalid", _json(_manifest(documents="a.pdf"))),
    "wrong-type-order-string": ("schema_invalid", _json(_manifest(signers=[signer("A", "a@example.com", "first")]))),
    "too-many-documents": ("schema_invalid", _json(_manifest(documents=[{"path": "a.pdf"}] * 31))),
    "name-with-forbidden-characters": ("schema_invalid", _json(_manifest(name="Q1 <script>/../'x'"))),
    "expiry-given-twice": ("schema_invalid", _json(_manifest(expiryDays=5, expiresAt="2031-01-01T00:00:00Z"))),
    "schema-version-unknown": ("schema_invalid", _json(_manifest(schemaVersion="2"))),
    "location-page-out-of-range": ("location_invalid", _json(_manifest(signers=_one_signer(
        page=7, left=10, top=10, width=100, height=40)))),
    "too-many-locations": ("too_many_locations", _json(_manifest(signers=[
        signer("Anna", "anna@example.com", locations=[{"document": 0, "page": 1, "left": 10, "top": 10 + i,
                                                       "width": 100, "height": 40} for i in range(31)])]))),
    "subscriber-internal-address": ("subscriber_unsafe", _json(_manifest(
        subscribers=["https://169.254.169.254/latest/meta-data"]))),
}


@pytest.mark.parametrize("case", sorted(MANIFEST_CASES))
def test_bad_manifests(world: World, case: str) -> None:
    code, body = MANIFEST_CASES[case]
    batch = unique("batch")
    upload(world, names.BATCHES_CONTAINER, f"{batch}/a.pdf", pdf_with_markers())
    name = f"{batch}/manifest.json"
    blob, etag = upload(world, names.BATCHES_CONTAINER, name, body)
    record = intake.intake_batch_manifest(world.store, world.settings, blob)
    assert_rejected(world, record, code, names.BATCHES_CONTAINER, name, etag)
    document = world.store.clients.container(names.BATCHES_CONTAINER).get_blob_client(f"{batch}/a.pdf")
    assert document.exists()  # the batch's documents stay too


def test_a_manifest_with_a_bom_is_accepted_after_bad_ones(world: World) -> None:
    batch = unique("batch")
    upload(world, names.BATCHES_CONTAINER, f"{batch}/a.pdf", pdf_with_markers())
    blob, _ = upload(world, names.BATCHES_CONTAINER, f"{batch}/manifest.json",
                     b"\xef\xbb\xbf" + _json(_manifest()))
    record = intake.intake_batch_manifest(world.store, world.settings, blob)
    assert record is not None and record.status is PackageStatus.RECEIVED, record.final_reason
    assert_good_inbox_input_goes_through(world)


# ---- the package-requests queue --------------------------------------------------------------------------

@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"ref": "x"}', b'{"packageRef": null}', b"\xff\xfe"])
def test_an_unreadable_creation_message_is_dropped(world: World, body: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    from functions import intake as intake_functions

    for key, value in base_env(world.env["DocumentStorage"], CONNECTIVE_PASSWORD="unused").items():
        monkeypatch.setenv(key, value)

    handler = intake_functions.create_package_from_request.build().get_user_function()
    message = func.QueueMessage(id=uuid.uuid4().hex, body=body)
    context = types.SimpleNamespace(invocation_id=uuid.uuid4().hex, function_name="create_package_from_request")
    assert handler(message, context) is None  # acknowledged: a retry could never succeed
    assert world.store.packages.get("None") is None


# ---- HTTP API --------------------------------------------------------------------------------------------

PDF = pdf_with_markers("#SIGN1#")


def package_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"schemaVersion": "1", "name": "Contract",
                            "documents": [{"content": base64.b64encode(PDF).decode(), "name": "Contract"}],
                            "signers": [{"name": "Ann Smith", "email": "ann@example.com"}]}
    body.update(overrides)
    return body


def _api_ref(key: str) -> str:
    return "api-" + hashlib.sha256(f"idempotency-key\n{key}".encode()).hexdigest()[:24]


def assert_api_refused(api: ApiClient, status: int, detail: str, *, body: Any = None, raw: bytes | None = None,
                       headers: dict[str, str] | None = None, path: str = "/api/packages") -> dict[str, Any]:
    """The problem answer, and nothing left behind: no row, no staged blob, no queue message."""
    key = uuid.uuid4().hex
    answer = api.call("POST", path, body, raw=raw, headers={"Idempotency-Key": key, **(headers or {})})
    assert answer.status == status and answer.mimetype == "application/problem+json", answer.body[:300]
    problem = answer.json()
    assert problem["status"] == status and detail in problem["detail"], problem
    ref = _api_ref(key)
    assert api.store.packages.get(ref) is None
    staging = api.store.clients.container(names.STAGING_CONTAINER)
    assert list(staging.list_blobs(name_starts_with=f"{ref}/")) == []
    return problem


def assert_api_still_accepts(api: ApiClient) -> None:
    answer = api.call("POST", "/api/packages", package_body(), headers={"Idempotency-Key": uuid.uuid4().hex})
    assert answer.status == 202


@pytest.mark.parametrize("raw, detail", [
    (b'{"schemaVersion": "1", "name": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "nests"),
    (b'{"schemaVersion": ' + b"9" * 5000 + b"}", "not valid JSON"),
    (b'{"name": "caf\xe9"}', "not valid JSON"),
    (b'{"name": "\xed\xa0\x80"}', "name: Input should be a valid string"),  # a UTF-8 encoded surrogate
])
def test_json_bodies_that_cannot_be_read(api: ApiClient, raw: bytes, detail: str) -> None:
    assert_api_refused(api, 400, detail, raw=raw, headers={"Content-Type": "application/json"})
    assert_api_still_accepts(api)


@pytest.mark.parametrize("overrides, fields", [
    ({"signers": "ann@example.com"}, ["signers"]),
    ({"documents": [{"content": 12}]}, ["documents[0].content"]),
    ({"expiryDays": "NaN"}, ["expiryDays"]),
    ({"subscribers": "https://example.com/hook"}, ["subscribers"]),
    ({"signers": [{"name": "Ann", "email": "ann@@example..com"}]}, ["signers[0].email"]),
    ({"signers": [{"name": "Ann", "email": "ann@example.com\r\nBcc: x@example.com"}]}, ["signers[0].email"]),
])
def test_wrong_types_and_invalid_emails_name_their_field(api: ApiClient, overrides: dict[str, Any],
                                                         fields: list[str]) -> None:
    problem = assert_api_refused(api, 400, "invalid", body=package_body(**overrides))
    assert [error["field"] for error in problem["errors"]] == fields


@pytest.mark.parametrize("content_type", ["multipart/form-data; boundary=x", "application/x-www-form-urlencoded",
                                          "application/xml", "text/json"])
def test_wrong_content_types_are_415(api: ApiClient, content_type: str) -> None:
    raw = json.dumps(package_body()).encode()
    assert_api_refused(api, 415, "application/json", raw=raw, headers={"Content-Type": content_type})
    assert_api_refused(api, 415, "application/json", raw=b'{"url": "http://127.0.0.1/x"}', path="/api/subscriptions",
                       headers={"Content-Type": content_type})


def test_an_idempotency_key_over_200_characters_is_refused(api: ApiClient) -> None:
    answer = api.call("POST", "/api/packages", package_body(), headers={"Idempotency-Key": "k" * 201})
    assert answer.status == 400 and "Idempotency-Key" in answer.json()["detail"]


@pytest.mark.parametrize("document, detail", [
    ({"path": "package-staging/../signing-errors/x.pdf"}, "container/blob"),
    ({"path": "signing-errors/report.json"}, "container/blob"),
    ({"path": "package-staging"}, "container/blob"),
    ({"content": base64.b64encode(PDF).decode(), "name": "../../etc/passwd"}, "invalid"),
    ({"content": base64.b64encode(PDF).decode(), "name": "a\x00b"}, "invalid"),
])
def test_document_paths_and_names_cannot_escape(api: ApiClient, document: dict[str, str], detail: str) -> None:
    assert_api_refused(api, 400, detail, body=package_body(documents=[document]))


# Refs that Table keys forbid (/ \ # ?), control characters, OData look-alikes and very long ones.
ODD_REFS = ["a\\b", "a#b", "a?b", "'", "' or 1 eq 1", "x' or PartitionKey ne '", "%00", "a\x00b", "a\tb",
            "..", "r" * 2000, "é-unicode", "api-" + "a" * 24 + "'"]
REF_ROUTES = [("GET", ""), ("DELETE", ""), ("GET", "/documents"), ("POST", "/remind"), ("POST", "/revoke"),
              ("POST", "/skip-signers"), ("POST", "/extend")]


def _call_route(api: ApiClient, route: str, method: str, route_params: dict[str, str],
                body: bytes = b"") -> func.HttpResponse:
    """Call the function behind `route` directly, with route parameters no URL could carry."""
    from tests.api.conftest import http_functions

    [user_function] = [f[3] for f in http_functions() if f[1] == route]
    request = func.HttpRequest(method=method, url="https://signing.example.com/api/x", headers={
        "Content-Type": "application/json"}, params={}, route_params=route_params, body=body)
    return user_function(request, types.SimpleNamespace(invocation_id=uuid.uuid4().hex, function_name=route))


@pytest.mark.parametrize("ref", ODD_REFS, ids=lambda ref: ascii(ref)[:24])
def test_refs_that_table_keys_forbid_are_404_on_every_package_route(api: ApiClient, ref: str) -> None:
    for method, suffix in REF_ROUTES:
        body = b'{"days": 5}' if suffix == "/extend" else b""
        response = _call_route(api, "packages/{ref}" + suffix, method, {"ref": ref}, body)
        assert response.status_code == 404, (method, suffix, response.get_body()[:200])
        problem = json.loads(response.get_body())
        assert response.mimetype == "application/problem+json" and problem["title"] == "Not found"
        text = response.get_body().decode()
        assert "OutOfRangeInput" not in text and "InvalidInput" not in text and "Table" not in text


def test_subscription_ids_and_trigger_names_that_look_like_injection_are_404(api: ApiClient) -> None:
    for odd in ("' or 1 eq 1", "a#b", "0" * 31 + "'", "../x"):
        response = _call_route(api, "subscriptions/{id}", "DELETE", {"id": odd})
        assert response.status_code == 404
        response = _call_route(api, "subscriptions/triggers/{trigger}", "POST", {"trigger": odd},
                               b'{"url": "http://127.0.0.1:9/hook"}')
        assert response.status_code == 404


def test_a_forged_continuation_token_is_refused_or_ignored_never_a_500(api: ApiClient) -> None:
    forged = {"PartitionKey": "' or 1 eq 1", "RowKey": "x#y/z?"}
    token = base64.urlsafe_b64encode(json.dumps(forged).encode()).decode().rstrip("=")
    answer = api.call("GET", "/api/packages", params={"continuationToken": token})
    assert answer.status in (200, 400), answer.body[:300]
    if answer.status == 400:
        assert "continuationToken" in answer.json()["detail"]


# ---- Connective callbacks --------------------------------------------------------------------------------

CALLBACK_REFS = ["a/b", "a\\b", "a#b", "a?b", "' or 1 eq 1", "%00", "a\x00b", "r" * 2000]


@pytest.mark.parametrize("ref", CALLBACK_REFS, ids=lambda ref: ascii(ref)[:24])
def test_callback_refs_that_table_keys_forbid(storage_connection_string: str, sandbox: SandboxHandle,
                                              monkeypatch: pytest.MonkeyPatch, ref: str) -> None:
    settings, store = settings_for(sandbox, storage_connection_string), store_for(storage_connection_string)
    client = client_for(sandbox)
    assert handle_callback(store, client, settings, ref, "0" * 64, CallbackClaim()).status_code == 401
    assert handle_callback(store, client, settings, ref, token_for(ref), CallbackClaim()).status_code == 404
    assert handle_link_request(store, client, settings, ref, token_for(ref), b"{}").status_code == 404
    env = env_for(sandbox, storage_connection_string)
    for key in ("DocumentStorage", "CONNECTIVE_BASE_URL", "CONNECTIVE_USERNAME", "CONNECTIVE_PASSWORD",
                "CALLBACK_SECRETS"):
        monkeypatch.setenv(key, env[key])
    for route in ("callbacks/connective/{packageRef}/{token?}", "callbacks/connective-notify/{packageRef}/{token?}"):
        response = _call_http(route, ref, token_for(ref))
        assert response.status_code == 404 and response.mimetype == "application/problem+json"
        assert "Table" not in response.get_body().decode()
    assert sandbox.admin("GET", "stats").json()["calls_by_operation"] == {}


def _call_http(route: str, ref: str, token: str, body: bytes = b"{}", **params: str) -> func.HttpResponse:
    from tests.api.conftest import http_functions

    [user_function] = [f[3] for f in http_functions() if f[1] == route]
    request = func.HttpRequest(method="POST", url=f"https://signing.example.com/api/{route}",
                               params={"token": token, **params}, route_params={"packageRef": ref}, body=body)
    return user_function(request, types.SimpleNamespace(invocation_id="inv", function_name=route))


@pytest.mark.parametrize("token", ["\u00e9" * 64, "0" * 10_000, "' or 1 eq 1", "%00", " "])
def test_malformed_callback_tokens_are_401(storage_connection_string: str, sandbox: SandboxHandle,
                                           monkeypatch: pytest.MonkeyPatch, token: str) -> None:
    store = store_for(storage_connection_string)
    env = env_for(sandbox, storage_connection_string)
    for key in ("DocumentStorage", "CONNECTIVE_BASE_URL", "CONNECTIVE_USERNAME", "CONNECTIVE_PASSWORD",
                "CALLBACK_SECRETS"):
        monkeypatch.setenv(key, env[key])
    ref = new_ref()
    insert_row(store, ref, "pkg")
    for route in ("callbacks/connective/{packageRef}/{token?}", "callbacks/connective-notify/{packageRef}/{token?}"):
        response = _call_http(route, ref, token)
        assert response.status_code == 401 and response.mimetype == "application/problem+json"
    row = store.packages.get(ref)
    assert row is not None and row.callback_count == 0 and list(store.events.history(ref)) == []


@pytest.mark.parametrize("body", [b"[" * 100_000, b"\xff\xfe garbage", b'{"PackageStatus": ' + b"9" * 5000 + b"}",
                                  b'"Finished"', b'{"PackageStatus": {"$ne": null}, "ActorId": [1, 2]}'])
def test_callback_bodies_are_hints_and_bad_ones_are_ignored(storage_connection_string: str, sandbox: SandboxHandle,
                                                            body: bytes) -> None:
    settings, store = settings_for(sandbox, storage_connection_string), store_for(storage_connection_string)
    client = client_for(sandbox)
    ref = new_ref()
    insert_row(store, ref, "pkg-unknown-at-connective")
    reply = handle_callback(store, client, settings, ref, token_for(ref), claim_from_request({}, body))
    assert reply.status_code == 200 and reply.outcome is Outcome.COALESCED  # recorded, read deferred
    row = store.packages.get(ref)
    assert row is not None and row.status is PackageStatus.PENDING and row.callback_count == 1
    link = handle_link_request(store, client, settings, ref, token_for(ref), body)
    assert link.status_code == 200


def test_a_replayed_callback_for_a_final_package_spends_no_call(storage_connection_string: str,
                                                                sandbox: SandboxHandle) -> None:
    settings, store = settings_for(sandbox, storage_connection_string), store_for(storage_connection_string)
    client = client_for(sandbox)
    ref = new_ref()
    insert_row(store, ref, "pkg-archived", status=PackageStatus.ARCHIVED)
    claim = claim_from_request({"packageStatus": "Finished"}, b'{"PackageStatus": "Finished"}')
    replies = [handle_callback(store, client, settings, ref, token_for(ref), claim) for _ in range(3)]
    assert all(reply.outcome is Outcome.ALREADY_FINAL and reply.status_code == 200 for reply in replies)
    row = store.packages.get(ref)
    assert row is not None and row.status is PackageStatus.ARCHIVED
    assert sandbox.admin("GET", "stats").json()["calls_by_operation"] == {}


# ---- webhook deliveries ----------------------------------------------------------------------------------

def test_a_redelivered_event_keeps_its_id_so_receivers_can_drop_the_replay(storage_connection_string: str) -> None:
    secret = "whsec-catalogue-0123456789"
    settings = Settings({"DocumentStorage": storage_connection_string, "WEBHOOK_SIGNING_SECRET": secret,
                         "WEBHOOK_ALLOW_LOOPBACK": "true"})
    store = store_for(storage_connection_string)
    with running_receiver() as receiver:
        subscription = subscriptions(store).add(Subscription(url=receiver.url, events=[EventType.ARCHIVED],
                                                             package_ref=new_ref()))
        publish_event(store, EventType.ARCHIVED, subscription.package_ref or "", {"archiveLocation": "x"})
        [message] = take_messages(store, subscription.id)
        deliver(settings, store, message)
        deliver(settings, store, message)  # the same queue message again (at-least-once)
        first, second = _two(receiver)
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == message["event"]["id"]
    assert first.body == second.body
    for request in (first, second):
        assert verifies(secret, request.body, request.headers)
        # Captured and replayed after the tolerance window: refused (the timestamp is signed).
        stale = str(int(request.headers["webhook-timestamp"]) - 301)
        assert not verifies(secret, request.body, {**request.headers, "webhook-timestamp": stale})


def _two(receiver: Receiver) -> tuple[Any, Any]:
    assert len(receiver.requests) == 2
    return receiver.requests[0], receiver.requests[1]
