"""The sandbox's switches for what no public source documents (docs/CONNECTIVE_CONTRACT.md): each variant
behaves as named, and the flows under each run in tests/contract/test_variants_e2e.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests

from tests.loopback import serving
from tests.sandbox.conftest import Api, actor_ids, wait_until


@dataclass
class Call:
    method: str
    path: str
    query: dict[str, str]
    content_type: str
    body: bytes


@dataclass
class Recorder:
    url: str = ""
    calls: list[Call] = field(default_factory=list)


@pytest.fixture()
def recorder() -> Iterator[Recorder]:
    state = Recorder()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _record(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            parts = urlsplit(self.path)
            state.calls.append(Call(self.command, parts.path, dict(parse_qsl(parts.query)),
                                    self.headers.get("Content-Type", ""), body))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_POST = _record

    with serving(Handler) as server:
        state.url = f"http://127.0.0.1:{server.server_port}"
        yield state


def _first_callback(api: Api, recorder: Recorder, **knobs: Any) -> tuple[Call, str]:
    api.config(**knobs)
    package = api.pending_package(CallBackUrl=f"{recorder.url}/cb/REF/tok?keep=1", ExternalPackageReference="REF")
    wait_until(lambda: recorder.calls)
    return recorder.calls[0], package["PackageId"]


@pytest.mark.parametrize("style", ["post-json-query", "post-json", "post-form", "get-package-id", "no-status"])
def test_each_callback_style(api: Api, recorder: Recorder, style: str) -> None:
    call, package_id = _first_callback(api, recorder, callback_style=style)
    assert call.path == "/cb/REF/tok" and call.query["keep"] == "1"
    extra = {key: value for key, value in call.query.items() if key != "keep"}
    if style == "post-json-query":
        assert call.method == "POST" and extra == {"packageId": package_id, "packageStatus": "Pending"}
        assert json.loads(call.body)["PackageStatus"] == "Pending"
    elif style == "post-json":
        assert call.method == "POST" and extra == {} and json.loads(call.body)["PackageId"] == package_id
    elif style == "post-form":
        assert call.method == "POST" and call.content_type == "application/x-www-form-urlencoded"
        assert dict(parse_qsl(call.body.decode()))["PackageStatus"] == "Pending" and extra == {}
    elif style == "get-package-id":
        assert call.method == "GET" and extra == {"packageId": package_id} and call.body == b""
    else:
        assert call.method == "POST" and extra == {} and json.loads(call.body) == {"PackageId": package_id}


def test_a_dropped_query_string(api: Api, recorder: Recorder) -> None:
    call, package_id = _first_callback(api, recorder, callback_drop_query=True)
    assert call.path == "/cb/REF/tok" and call.query == {"packageId": package_id, "packageStatus": "Pending"}


@pytest.mark.parametrize("style", ["post-json", "post-form", "get-query", "bare"])
def test_each_notification_style(api: Api, recorder: Recorder, style: str) -> None:
    api.config(notification_style=style)
    package = api.pending_package(NotificationCallBackUrl=f"{recorder.url}/notify/REF/tok")
    actor_id = actor_ids(package)[0]
    api.act(package["PackageId"], actor_id, "request-link")
    call = wait_until(lambda: recorder.calls and recorder.calls[0])
    fields = {"post-json": lambda: json.loads(call.body), "post-form": lambda: dict(parse_qsl(call.body.decode())),
              "get-query": lambda: call.query, "bare": lambda: {}}[style]()
    assert call.method == ("GET" if style == "get-query" else "POST")
    assert (fields.get("ActorId") == actor_id) is (style != "bare")


def test_package_list_variants(api: Api) -> None:
    api.create()
    api.config(list_sort_field="refuse")
    assert api.call("GET", "/packages").status_code == 200
    assert api.call("GET", "/packages", params={"SortField": "CreationTimestamp"}).status_code == 400
    api.config(list_sort_field="ignore")
    assert api.call("GET", "/packages", params={"SortField": "Colour"}).status_code == 200
    api.config(list_status_case="exact")
    assert api.call("GET", "/packages", params={"Status": "Draft"}).json()["Total"] == 1
    assert api.call("GET", "/packages", params={"Status": "draft"}).status_code == 400
    api.config(list_status_case="upper")
    page = api.call("GET", "/packages", params={"Status": "DRAFT"}).json()
    assert page["Total"] == 1 and page["Items"][0]["PackageStatus"] == "DRAFT"
    assert api.call("GET", "/packages", params={"Status": "Draft"}).status_code == 400


def test_delete_of_a_draft_may_be_refused(api: Api) -> None:
    api.config(delete_draft_conflict=True)
    draft = api.create()
    assert api.call("DELETE", f"/packages/{draft}").status_code == 409


@pytest.mark.parametrize(("error_format", "key", "expected"), [
    ("object", "", {"ErrorCode", "Message"}), ("object", "ErrorMessage", {"ErrorCode", "ErrorMessage"}),
    ("array", "", {"ErrorCode", "ErrorMessage"}), ("array", "Message", {"ErrorCode", "Message"})])
def test_error_bodies(api: Api, error_format: str, key: str, expected: set[str]) -> None:
    api.config(error_format=error_format, error_message_key=key)
    body = api.call("GET", "/packages/00000000-0000-0000-0000-000000000000/status").json()
    entry = body[0] if error_format == "array" else body
    assert set(entry) == expected


def test_unknown_variant_values_are_refused(api: Api) -> None:
    for knob, value in (("callback_style", "carrier-pigeon"), ("list_sort_field", "maybe"),
                        ("audit_proof_uploads", "per-page"), ("error_message_key", "Text")):
        with pytest.raises(requests.HTTPError, match="400"):
            api.handle.admin("POST", "config", json={knob: value})
