"""The API through the local Functions host: keys, the 202 pattern as a flow follows it, and a flow
trigger receiving a signed event when the sandbox's signer signs."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator

import pytest
import requests
from openapi_spec_validator import validate

from devtools.world import LocalWorld
from tests.sandbox.pdfs import make_pdf
from tests.webhooks.receiver import Receiver, running_receiver
from tests.webhooks.verify import verifies

pytestmark = [pytest.mark.slow]


@pytest.fixture(scope="module")
def world() -> Iterator[LocalWorld]:
    with LocalWorld(workers=1, settings_file=None, sandbox_args=["--auto-sign", "--auto-sign-delay", "1"],
                    extra_settings={"STATUS_REFRESH_DELAY_S": "2", "WEBHOOK_RETRY_BASE_S": "1"}) as running:
        yield running


@pytest.fixture()
def receiver() -> Iterator[Receiver]:
    with running_receiver() as instance:
        yield instance


def keyed(world: LocalWorld) -> dict[str, str]:
    return {"x-functions-key": world.function_key}


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
