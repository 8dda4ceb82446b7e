"""The API through the local Functions host: keys, the 202 pattern as a flow follows it, a flow
trigger receiving a signed event when the sandbox's signer signs, and the sample workflow's calls."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest
import requests
from openapi_spec_validator import validate

from devtools.world import LocalWorld
from tests.conftest import keyed
from tests.sandbox.pdfs import make_pdf
from tests.webhooks.receiver import Receiver
from tests.webhooks.verify import verifies

pytestmark = [pytest.mark.slow]


@pytest.fixture(scope="module")
def world() -> Iterator[LocalWorld]:
    with LocalWorld(workers=1, settings_file=None, sandbox_args=["--auto-sign", "--auto-sign-delay", "1"],
                    extra_settings={"STATUS_REFRESH_DELAY_S": "2", "WEBHOOK_RETRY_BASE_S": "1"}) as running:
        yield running


def test_keys_guard_every_route_but_health(world: LocalWorld) -> None:
    base = f"{world.host_url}/api"
    assert requests.get(f"{base}/health", timeout=10).json() == {"status": "ok", "storage": "ok"}
    for method, path in (("GET", "/packages"), ("GET", "/openapi.json"), ("POST", "/packages"),
                         ("POST", "/subscriptions"), ("DELETE", "/subscriptions/0123"),
                         ("POST", "/subscriptions/triggers/package-signed"), ("GET", "/packages/x/documents")):
        assert requests.request(method, base + path, timeout=10).status_code == 401, path
    listed = requests.get(f"{base}/packages", headers=keyed(world), timeout=10)
    assert listed.status_code == 200 and "value" in listed.json()
    spec = requests.get(f"{base}/openapi.json", params={"code": world.function_key}, timeout=10).json()
    validate(spec)
    problem = requests.post(f"{base}/packages", data=b"{", headers=keyed(world), timeout=10)
    assert problem.status_code == 400 and problem.headers["Content-Type"].startswith("application/problem+json")


def test_a_flow_creates_a_package_and_its_trigger_fires_when_signed(world: LocalWorld, receiver: Receiver) -> None:
    base = f"{world.host_url}/api"
    trigger = requests.post(f"{base}/subscriptions/triggers/package-signed", json={"url": receiver.url},
                            headers=keyed(world), timeout=10)
    assert trigger.status_code == 201
    body = {"schemaVersion": "1", "name": "Host contract",
            "documents": [{"content": base64.b64encode(make_pdf(markers={1: ["#SIGN1#"]})).decode()}],
            "signers": [{"name": "Ann Smith", "email": "ann@example.com"}]}
    accepted = requests.post(f"{base}/packages", json=body, headers={**keyed(world), "Idempotency-Key":
                                                                     uuid.uuid4().hex}, timeout=30)
    assert accepted.status_code == 202
    ref = accepted.json()["packageRef"]

    # What Logic Apps does with a 202: GET Location, honour Retry-After, stop at the first non-202.
    location, polls = accepted.headers["Location"], 0
    while True:
        answer = requests.get(location, headers=keyed(world), timeout=10)
        if answer.status_code != 202:
            break
        polls += 1
        location = answer.headers["Location"]
        time.sleep(min(1.0, int(answer.headers["Retry-After"])))
        assert polls < 60, "the package was not created in time"
    assert answer.status_code == 200 and answer.json()["connectivePackageId"]

    deadline = time.monotonic() + 60
    while not receiver.requests and time.monotonic() < deadline:
        time.sleep(0.5)
    [delivery] = receiver.requests
    assert verifies(world.settings["WEBHOOK_SIGNING_SECRET"], delivery.body, delivery.headers)
    event = json.loads(delivery.body)
    assert (event["type"], event["packageRef"], event["data"]["status"]) == ("package.status_changed", ref,
                                                                             "Finished")
    final = requests.get(f"{base}/packages/{ref}", params={"wait": "final"}, headers=keyed(world), timeout=10)
    assert final.status_code == 200 and final.json()["status"] in ("Finished", "Archived")
    assert requests.delete(trigger.headers["Location"], headers=keyed(world), timeout=10).status_code == 204


def _deliveries(receiver: Receiver, query: str, ref: str) -> list[dict[str, Any]]:
    return [event for event in (json.loads(r.body) for r in list(receiver.requests) if r.path.endswith(query))
            if event["packageRef"] == ref]


def test_the_sample_workflow_and_every_trigger_output_through_the_host(world: LocalWorld,
                                                                       receiver: Receiver) -> None:
    """docs/samples/logic-app-workflow.json's calls in order, against the running app, and the events
    that reach the triggers checked against the schemas their designer outputs come from."""
    base = f"{world.host_url}/api"
    spec = requests.get(f"{base}/openapi.json", headers=keyed(world), timeout=10).json()
    triggers = ("status-changed", "signer-acted", "package-archived")
    trigger_locations = []
    for name in triggers:
        made = requests.post(f"{base}/subscriptions/triggers/{name}", json={"url": f"{receiver.url}?trigger={name}"},
                             headers=keyed(world), timeout=10)
        assert made.status_code == 201
        trigger_locations.append(made.headers["Location"])

    # Create_signing_package with the asynchronous pattern off: the 202 body at once.
    body = {"schemaVersion": "1", "name": "Sample contract", "externalReference": uuid.uuid4().hex,
            "documents": [{"content": base64.b64encode(make_pdf(markers={1: ["#SIGN1#"]})).decode(),
                           "name": "Contract"}],
            "signers": [{"name": "Bo Lee", "email": "bo@example.com"}]}
    accepted = requests.post(f"{base}/packages", json=body, headers=keyed(world), timeout=30)
    assert accepted.status_code == 202 and {"packageRef", "statusUrl"} <= set(accepted.json())
    ref = accepted.json()["packageRef"]

    # Wait_for_the_end_of_signing: the HTTP Webhook's subscribe call, then the first matching event.
    flow_url = f"{receiver.url}?flow=1"
    subscribed = requests.post(f"{base}/subscriptions", headers=keyed(world), timeout=10, json={
        "url": flow_url, "events": ["package.archived", "package.status_changed"], "packageRef": ref,
        "statuses": ["Rejected", "Revoked", "Expired", "Failed"]})
    assert subscribed.status_code == 201
    deadline = time.monotonic() + 90
    while not (_deliveries(receiver, "flow=1", ref) and _deliveries(receiver, "trigger=package-archived", ref)):
        assert time.monotonic() < deadline, "the package was not signed and archived in time"
        time.sleep(0.5)
    [outcome] = _deliveries(receiver, "flow=1", ref)
    assert outcome["type"] == "package.archived"  # Finished is not in the statuses: the archive follows it
    links = requests.get(f"{base}/packages/{ref}/documents", headers=keyed(world), timeout=10)
    assert links.status_code == 200 and links.json()["documents"]
    # The HTTP Webhook's unsubscribe call: by the callback URL.
    assert requests.post(f"{base}/subscriptions/remove", json={"url": flow_url}, headers=keyed(world),
                         timeout=10).status_code == 204

    for name, location in zip(triggers, trigger_locations, strict=True):
        events = _deliveries(receiver, f"trigger={name}", ref)
        assert events, f"the {name} trigger received nothing"
        content = spec["paths"][f"/subscriptions/triggers/{name}"]["x-ms-notification-content"]
        schema = {**content["schema"], "definitions": spec["definitions"]}
        for event in events:
            jsonschema.Draft4Validator(schema).validate(event)
        assert requests.delete(location, headers=keyed(world), timeout=10).status_code == 204
    statuses = [event["data"]["status"] for event in _deliveries(receiver, "trigger=status-changed", ref)]
    assert "Finished" in statuses  # Archived is announced by package.archived, not as a status change
