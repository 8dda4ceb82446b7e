"""POST/GET /api/packages and the status resource, against Azurite (no Connective calls here)."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from shared.storage import names
from shared.storage.packages import PackageRecord
from shared.storage.status import PackageStatus
from tests.api.conftest import PUBLIC_BASE_URL, ApiClient, env_for
from tests.sandbox.pdfs import make_pdf

PDF = make_pdf(markers={1: ["#SIGN1#"]})


def package_body(**overrides: Any) -> dict[str, Any]:
    body = {
        "schemaVersion": "1",
        "name": "Contract",
        "documents": [{"content": base64.b64encode(PDF).decode(), "name": "Contract"}],
        "signers": [{"name": "Ann Smith", "email": "ann@example.com"}],
    }
    body.update(overrides)
    return body


def queued_refs(api: ApiClient) -> list[str]:
    queue = api.store.clients.queue(names.PACKAGE_REQUESTS_QUEUE)
    return [json.loads(m.content)["packageRef"] for m in queue.peek_messages(max_messages=32)]


def test_create_answers_202_with_location_and_records_the_package(api: ApiClient) -> None:
    answer = api.call("POST", "/api/packages", package_body(), headers={"Idempotency-Key": uuid.uuid4().hex})
    assert answer.status == 202
    body = answer.json()
    ref = body["packageRef"]
    assert ref.startswith("api-") and body["status"] == "Received"
    assert body["statusUrl"] == f"{PUBLIC_BASE_URL}/api/packages/{ref}"
    assert answer.headers["Location"] == f"{PUBLIC_BASE_URL}/api/packages/{ref}?wait=created"
    assert int(answer.headers["Retry-After"]) > 0
    record = api.store.packages.get(ref)
    assert record is not None and record.source == "api" and record.status is PackageStatus.RECEIVED
    [document] = record.spec["documents"]
    assert (document["container"], document["blob"]) == (names.STAGING_CONTAINER, f"{ref}/0-Contract.pdf")
    staged = api.store.clients.container(names.STAGING_CONTAINER).get_blob_client(document["blob"])
    assert staged.download_blob().readall() == PDF
    assert "content" not in json.dumps(record.spec["request"]["documents"])  # bytes never in the row
    assert ref in queued_refs(api)


def test_a_repeated_post_returns_the_same_package(api: ApiClient) -> None:
    key = uuid.uuid4().hex
    first = api.call("POST", "/api/packages", package_body(), headers={"Idempotency-Key": key})
    second = api.call("POST", "/api/packages", package_body(), headers={"Idempotency-Key": key})
    assert second.status == 202 and second.json() == first.json()
    assert second.headers["Location"] == first.headers["Location"]
    reference = f"ext-{uuid.uuid4().hex}"
    by_reference = [api.call("POST", "/api/packages", package_body(externalReference=reference)).json()["packageRef"]
                    for _ in range(2)]
    assert by_reference[0] == by_reference[1]
    other = api.call("POST", "/api/packages", package_body()).json()["packageRef"]
    assert other not in by_reference and other != first.json()["packageRef"]


def test_documents_by_blob_path(api: ApiClient) -> None:
    name = f"uploads/{uuid.uuid4().hex}.pdf"
    api.store.clients.container(names.STAGING_CONTAINER).upload_blob(name, PDF)
    answer = api.call("POST", "/api/packages", package_body(
        documents=[{"path": f"{names.STAGING_CONTAINER}/{name}"}]))
    assert answer.status == 202
    record = api.store.packages.get(answer.json()["packageRef"])
    assert record is not None and record.spec["documents"][0]["blob"] == name


@pytest.mark.parametrize("raw, status, detail", [
    (b'{"schemaVersion": "1", "name": "a", "name": "b"}', 400, "repeats the key 'name'"),
    (b'{"schemaVersion": ', 400, "not valid JSON"),
    (b"[1, 2]", 400, "must be a JSON object"),
    (b"", 400, "empty"),
])
def test_malformed_bodies_are_refused_clearly(api: ApiClient, raw: bytes, status: int, detail: str) -> None:
    answer = api.call("POST", "/api/packages", raw=raw or None, headers={"Content-Type": "application/json"})
    assert answer.status == status and detail in answer.json()["detail"]
    assert answer.json()["title"] and answer.json()["status"] == status


def test_unknown_fields_are_listed(api: ApiClient) -> None:
    body = package_body(colour="blue")
    body["signers"][0]["mobile"] = "+3247"
    answer = api.call("POST", "/api/packages", body)
    assert answer.status == 400
    problem = answer.json()
    assert "unknown fields: signers[0].mobile, colour" in problem["detail"]
    assert {"field": "colour", "message": "unknown field"} in problem["errors"]


def test_invalid_values_name_their_field(api: ApiClient) -> None:
    answer = api.call("POST", "/api/packages", package_body(signers=[{"name": "A", "email": "not-an-email"}]))
    assert answer.status == 400
    assert [e["field"] for e in answer.json()["errors"]] == ["signers[0].email"]


@pytest.mark.parametrize("document, detail", [
    ({"content": "%%% not base64 %%%"}, "not valid base64"),
    ({"content": base64.b64encode(b"hello, not a pdf").decode()}, "PDF"),
    ({"path": "signed-documents/2030/01/x/contract.pdf"}, "container/blob with a container among"),
    ({"path": "package-staging/missing.pdf"}, "does not exist"),
])
def test_bad_documents_are_refused_and_nothing_stays(api: ApiClient, document: dict[str, str], detail: str) -> None:
    key = uuid.uuid4().hex
    answer = api.call("POST", "/api/packages", package_body(documents=[document]), headers={"Idempotency-Key": key})
    assert answer.status == 400 and detail in answer.json()["detail"]
    staging = api.store.clients.container(names.STAGING_CONTAINER)
    ref = "api-" + __import__("hashlib").sha256(f"idempotency-key\n{key}".encode()).hexdigest()[:24]
    assert list(staging.list_blobs(name_starts_with=f"{ref}/")) == []
    assert api.store.packages.get(ref) is None


def test_unsafe_subscribers_are_refused(api: ApiClient) -> None:
    answer = api.call("POST", "/api/packages", package_body(subscribers=["https://169.254.169.254/hook"]))
    assert answer.status == 400 and answer.json()["errors"][0]["field"] == "subscribers[0]"


def test_body_size_limit(monkeypatch: pytest.MonkeyPatch, storage_connection_string: str) -> None:
    small = ApiClient(monkeypatch, env_for(storage_connection_string, API_MAX_BODY_MB="0.001"))
    answer = small.call("POST", "/api/packages", package_body())
    assert answer.status == 413 and "larger than the limit" in answer.json()["detail"]


def _row(api: ApiClient, status: PackageStatus, created_at: datetime | None = None, **fields: Any) -> PackageRecord:
    record = PackageRecord(ref=f"t-{uuid.uuid4().hex[:16]}", status=status, source="api",
                           spec={"request": {"name": "Row"}}, **fields)
    if created_at:
        record.created_at = created_at
    api.store.packages.insert(record)
    return record


def test_status_resource_and_the_asynchronous_pattern(api: ApiClient) -> None:
    received = _row(api, PackageStatus.RECEIVED)
    plain = api.call("GET", f"/api/packages/{received.ref}")
    assert plain.status == 200 and plain.json()["status"] == "Received" and plain.json()["isFinal"] is False
    waiting = api.call("GET", f"/api/packages/{received.ref}", params={"wait": "created"})
    assert waiting.status == 202
    assert waiting.headers["Location"] == f"{PUBLIC_BASE_URL}/api/packages/{received.ref}?wait=created"

    pending = _row(api, PackageStatus.PENDING, connective_package_id="cid-1")
    assert api.call("GET", f"/api/packages/{pending.ref}", params={"wait": "created"}).status == 200
    still = api.call("GET", f"/api/packages/{pending.ref}", params={"wait": "final"})
    assert still.status == 202 and int(still.headers["Retry-After"]) >= 30

    finished = _row(api, PackageStatus.REJECTED, final_reason="Rejected by ann@example.com")
    done = api.call("GET", f"/api/packages/{finished.ref}", params={"wait": "final"})
    assert done.status == 200 and done.json()["finalReason"] == "Rejected by ann@example.com"
    assert done.json()["isFinal"] is True

    assert api.call("GET", "/api/packages/no-such-package").status == 404
    assert api.call("GET", "/api/packages/x'y").status == 404
    assert api.call("GET", f"/api/packages/{received.ref}", params={"wait": "soon"}).status == 400


def test_list_filters_and_pages(api: ApiClient) -> None:
    start = datetime(2031, 1, 1, tzinfo=UTC) + timedelta(minutes=uuid.uuid4().int % 100000)
    mine = [_row(api, PackageStatus.REVOKED, start + timedelta(seconds=i)).ref for i in range(5)]
    _row(api, PackageStatus.PENDING, start + timedelta(seconds=2))
    _row(api, PackageStatus.REVOKED, start + timedelta(hours=1))
    params = {"status": "Revoked", "createdFrom": start.isoformat(),
              "createdTo": (start + timedelta(minutes=1)).isoformat(), "top": "2"}
    seen: list[str] = []
    answer = api.call("GET", "/api/packages", params=params)
    pages = 0
    while True:
        pages += 1
        page = answer.json()
        assert answer.status == 200 and len(page["value"]) <= 2
        seen += [item["packageRef"] for item in page["value"]]
        if "nextLink" not in page:
            break
        link = urlsplit(page["nextLink"])
        assert page["nextLink"].startswith(f"{PUBLIC_BASE_URL}/api/packages?")
        answer = api.call("GET", link.path, params={k: v[0] for k, v in parse_qs(link.query).items()})
    assert sorted(seen) == sorted(mine) and pages >= 3


@pytest.mark.parametrize("params, field", [
    ({"status": "Pending' or true"}, "status"),
    ({"createdFrom": "yesterday"}, "createdFrom"),
    ({"createdTo": "2030-01-01T00:00:00"}, "createdTo"),  # no time zone
    ({"top": "0"}, "top"),
    ({"continuationToken": "bm90IGEgdG9rZW4"}, "continuationToken"),
])
def test_list_refuses_bad_parameters(api: ApiClient, params: dict[str, str], field: str) -> None:
    answer = api.call("GET", "/api/packages", params=params)
    assert answer.status == 400 and answer.json()["errors"][0]["field"] == field


def test_document_links_are_read_only_and_expire(api: ApiClient) -> None:
    ref = f"t-{uuid.uuid4().hex[:16]}"
    blob_name = f"2031/01/{ref}/Contract.pdf"
    api.store.clients.container(names.SIGNED_CONTAINER).upload_blob(blob_name, PDF)
    _row(api, PackageStatus.ARCHIVED, archived_files=[
        {"name": "Contract.pdf", "blob": blob_name, "kind": "signed-document", "contentType": "application/pdf"}])
    row = api.store.packages.query("Status eq @s", {"s": "Archived"})
    record = next(r for r in row if r.archived_files and r.archived_files[0]["blob"] == blob_name)
    answer = api.call("GET", f"/api/packages/{record.ref}/documents")
    assert answer.status == 200
    links = answer.json()
    expires = datetime.fromisoformat(links["expiresAt"])
    assert timedelta(minutes=14) < expires - datetime.now(UTC) <= timedelta(minutes=15)
    [link] = links["documents"]
    assert link["kind"] == "signed-document" and "sig=" in link["url"] and "sp=r" in link["url"]
    download = requests.get(link["url"], timeout=10)
    assert download.status_code == 200 and download.content == PDF
    assert "Contract.pdf" in download.headers["Content-Disposition"]
    write = requests.put(link["url"], data=b"x", headers={"x-ms-blob-type": "BlockBlob"}, timeout=10)
    assert write.status_code == 403

    pending = _row(api, PackageStatus.PENDING)
    assert api.call("GET", f"/api/packages/{pending.ref}/documents").status == 409


def test_wrong_methods_and_unknown_paths(api: ApiClient) -> None:
    answer = api.call("PUT", "/api/packages")
    assert answer.status == 405 and answer.headers["Allow"] == "GET, POST"
    assert api.call("POST", "/api/packages", raw=b"a=b", headers={"Content-Type": "text/plain"}).status == 415


def test_health_needs_no_connective(api: ApiClient) -> None:
    answer = api.call("GET", "/api/health")
    assert answer.status == 200 and answer.json() == {"status": "ok", "storage": "ok"}
