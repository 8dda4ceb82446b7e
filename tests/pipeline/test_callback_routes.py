"""The callback and new-link routes: the token in the path (anonymous routes), the query-string form of
older packages, and a new-link request whatever shape it comes in (docs/CONNECTIVE_CONTRACT.md)."""

from __future__ import annotations

import json
import types
from typing import Any

import azure.functions as func
import pytest

from shared.pipeline.callbacks import Outcome, handle_link_request
from shared.pipeline.tokens import CALLBACK_ROUTE, NOTIFICATION_ROUTE, ROUTE_PARAMETERS, callback_url
from shared.storage.status import PackageStatus
from shared.storage.store import Store
from tests.conftest import SandboxHandle
from tests.pipeline.callback_world import (
    SIGNATURE_BOX,
    client_for,
    env_for,
    insert_row,
    new_ref,
    pdf,
    settings_for,
    stakeholder,
    store_for,
    token_for,
)


@pytest.fixture()
def store(storage_connection_string: str) -> Store:
    return store_for(storage_connection_string)


@pytest.fixture()
def app_settings(sandbox: SandboxHandle, storage_connection_string: str, monkeypatch: pytest.MonkeyPatch) -> None:
    env = env_for(sandbox, storage_connection_string)
    for key in ("DocumentStorage", "CONNECTIVE_BASE_URL", "CONNECTIVE_USERNAME", "CONNECTIVE_PASSWORD",
                "CALLBACK_SECRETS", "STATUS_REFRESH_DELAY_S"):
        monkeypatch.setenv(key, env[key])


def _function(route: str) -> Any:
    from tests.api.conftest import http_functions

    [user_function] = [f[3] for f in http_functions() if f[1] == route]
    return user_function


def _call(route: str, ref: str, *, method: str = "POST", path_token: str | None = None, body: bytes = b"",
          headers: dict[str, str] | None = None, **params: str) -> func.HttpResponse:
    route_params = {"packageRef": ref, **({"token": path_token} if path_token is not None else {})}
    request = func.HttpRequest(method=method, url=f"https://signing.example.com/api/{route}", params=params,
                               route_params=route_params, body=body, headers=headers or {})
    return _function(route)(request, types.SimpleNamespace(invocation_id="inv", function_name=route))


CALLBACK = CALLBACK_ROUTE + ROUTE_PARAMETERS
NOTIFY = NOTIFICATION_ROUTE + ROUTE_PARAMETERS


def test_the_registered_url_carries_the_token_in_its_path_and_no_key() -> None:
    from shared.config import Settings

    settings = Settings({"CALLBACK_SECRETS": "s", "PUBLIC_BASE_URL": "https://fn.example.com/",
                         "CALLBACK_FUNCTION_KEY": "legacy-key"})
    url = callback_url(settings, "inb-0123")
    assert url.startswith("https://fn.example.com/api/callbacks/connective/inb-0123/")
    assert "?" not in url and "code" not in url and len(url.rsplit("/", 1)[1]) == 64


@pytest.mark.usefixtures("app_settings")
@pytest.mark.parametrize("route", [CALLBACK, NOTIFY])
def test_the_token_in_the_path_and_the_older_query_form_are_both_accepted(store: Store, route: str) -> None:
    ref = new_ref()
    insert_row(store, ref, "pkg", status=PackageStatus.ARCHIVED)
    in_path = _call(route, ref, path_token=token_for(ref), body=b'{"PackageStatus": "Finished"}')
    in_query = _call(route, ref, token=token_for(ref), code="an-old-function-key")
    assert in_path.status_code == 200 and in_query.status_code == 200
    for refused in (_call(route, ref), _call(route, ref, path_token="0" * 64),
                    _call(route, ref, path_token=token_for(ref + "x"), token=token_for(ref))):
        assert refused.status_code == 401 and refused.mimetype == "application/problem+json"


@pytest.mark.usefixtures("app_settings")
def test_a_get_callback_with_only_a_package_id_schedules_one_read(store: Store) -> None:
    ref = new_ref()
    insert_row(store, ref, "pkg-1")
    answer = _call(CALLBACK, ref, method="GET", path_token=token_for(ref), packageId="pkg-1")
    assert answer.status_code == 200 and json.loads(answer.get_body())["outcome"] == Outcome.COALESCED.value
    again = _call(CALLBACK, ref, method="POST", path_token=token_for(ref),
                  body=b"packageId=pkg-1", headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert json.loads(again.get_body()) == {"outcome": "coalesced", "refreshScheduled": False}  # joined the first
    received = [event for event in store.events.history(ref) if event["kind"] == "callback_received"]
    assert len(received) == 2  # both recorded; one status read queued


def _published(store: Store, ref: str) -> list[str]:
    return [event["actor_id"] for event in store.events.history(ref) if event["kind"] == "link_published"]


def _two_signer_package(store: Store, sandbox: SandboxHandle, *, parallel: bool) -> tuple[str, dict[str, Any]]:
    """Ann and Bob sign one after the other, or both at once. Returns the ref and {email: (stakeholder, actor)}."""
    ref = new_ref()
    signers = [stakeholder(email, fields=[{**SIGNATURE_BOX, "Top": str(600 - 80 * n)}], order=1 if parallel else n + 1)
               for n, email in enumerate(["ann@example.com", "bob@example.com"])]
    package_id = client_for(sandbox).create_instant_package(
        {"Initiator": "owner@example.com", "DocumentName": "contract", "ExternalPackageReference": ref,
         "Stakeholders": signers}, pdf(f"contract for {ref}")).package_id
    insert_row(store, ref, package_id)
    state = sandbox.admin("GET", f"packages/{package_id}").json()
    return ref, {holder["persons"][0]["email"]: (holder["id"], holder["actors"][0]["id"])
                 for holder in state["stakeholders"]}


@pytest.mark.parametrize("shape", ["query-actor", "json-stakeholder", "form-email", "query-email-any-case"])
def test_a_link_request_finds_its_actor_in_any_shape(store: Store, sandbox: SandboxHandle,
                                                     storage_connection_string: str, shape: str) -> None:
    settings = settings_for(sandbox, storage_connection_string)
    ref, found = _two_signer_package(store, sandbox, parallel=True)
    bob_stakeholder, bob = found["bob@example.com"]
    body, params = {
        "query-actor": (b"", {"actorid": bob}),
        "json-stakeholder": (json.dumps({"stakeholderID": bob_stakeholder}).encode(), {}),
        "form-email": (b"emailaddress=BOB%40example.com", {}),
        "query-email-any-case": (b"", {"EMAIL": "Bob@Example.com"}),
    }[shape]
    reply = handle_link_request(store, client_for(sandbox), settings, ref, token_for(ref), body, params)
    assert reply.outcome is Outcome.APPLIED
    assert _published(store, ref) == [bob]


def test_a_link_request_naming_nobody_sends_a_link_to_the_actor_whose_turn_it_is(
        store: Store, sandbox: SandboxHandle, storage_connection_string: str) -> None:
    settings = settings_for(sandbox, storage_connection_string)
    ref, found = _two_signer_package(store, sandbox, parallel=False)
    _, ann = found["ann@example.com"]  # order 1: her turn, not Bob's
    for body, params in ((b"", {}), (b'{"ActorId": "not-an-actor"}', {})):
        reply = handle_link_request(store, client_for(sandbox), settings, ref, token_for(ref), body, params)
        assert reply.outcome is Outcome.APPLIED
    assert _published(store, ref) == [ann, ann]
