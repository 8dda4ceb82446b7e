"""HTTP triggers served by the host: routes, methods, keys, bodies, outputs, failures."""

from __future__ import annotations

import base64

import requests

from devtools.host.process import HostProcess
from tests.host.conftest import FUNCTION_KEYS, MASTER_KEY, Storage, wait_for


def test_route_parameters_constraints_and_case(live_host: HostProcess) -> None:
    answer = requests.get(f"{live_host.url}/API/Items/42/first?code={FUNCTION_KEYS[0]}&x=1", timeout=10)
    assert answer.status_code == 200
    body = answer.json()
    assert (body["id"], body["label"], body["query"]["x"]) == ("42", "first", "1")
    optional = requests.get(f"{live_host.url}/api/items/7", headers={"x-functions-key": FUNCTION_KEYS[1]}, timeout=10)
    assert optional.status_code == 200 and optional.json()["label"] is None
    # `{id:int}` does not match a word, and PUT is not among the route's methods: both are 404 as in Azure.
    assert requests.get(f"{live_host.url}/api/items/abc?code={FUNCTION_KEYS[0]}", timeout=10).status_code == 404
    assert requests.put(f"{live_host.url}/api/items/1?code={FUNCTION_KEYS[0]}", timeout=10).status_code == 404
    assert requests.get(f"{live_host.url}/items/1?code={FUNCTION_KEYS[0]}", timeout=10).status_code == 404


def test_auth_levels(live_host: HostProcess) -> None:
    url = f"{live_host.url}/api/items/1"
    assert requests.get(url, timeout=10).status_code == 401
    assert requests.get(url, params={"code": "wrong"}, timeout=10).status_code == 401
    assert requests.get(url, params={"code": MASTER_KEY}, timeout=10).status_code == 200
    admin = f"{live_host.url}/api/admin-only"
    assert requests.get(admin, params={"code": FUNCTION_KEYS[0]}, timeout=10).status_code == 401
    assert requests.get(admin, headers={"x-functions-key": MASTER_KEY}, timeout=10).status_code == 200
    public = requests.get(f"{live_host.url}/api/public/ping", timeout=10)  # anonymous, and an async function
    assert (public.status_code, public.text, public.headers["X-Test"]) == (201, "pong", "yes")


def test_post_body_and_queue_output(live_host: HostProcess, host_storage: Storage) -> None:
    payload = b'{"hello": "queue"}'
    with requests.Session() as session:  # keep-alive: two requests on one connection
        for _ in range(2):
            answer = session.post(f"{live_host.url}/api/items/3", params={"code": FUNCTION_KEYS[0]}, data=payload,
                                  timeout=10)
            assert answer.status_code == 200 and answer.json()["body_len"] == len(payload)
    messages = wait_for(lambda: host_storage.raw_messages("http-out"))
    # host.json says messageEncoding base64, so the output binding encodes.
    assert base64.b64decode(messages[0]) == payload


def test_request_body_limit(live_host: HostProcess) -> None:
    url = f"{live_host.url}/api/items/1?code={FUNCTION_KEYS[0]}"
    assert requests.post(url, data=b"x" * (1024 * 1024 + 1), timeout=10).status_code == 413
    assert requests.post(url, data=b"x" * 1000, timeout=10).json()["body_len"] == 1000


def test_failure_is_500_and_logged(live_host: HostProcess) -> None:
    assert requests.get(f"{live_host.url}/api/boom", timeout=10).status_code == 500
    failed = wait_for(lambda: [e for e in live_host.events("host.invocation") if e["function"] == "http_boom"])
    assert failed[0]["outcome"] == "Failed" and failed[0]["trigger"] == "http"
    assert failed[0]["duration_ms"] >= 0 and len(failed[0]["invocation_id"]) == 36


def test_status_needs_no_key(live_host: HostProcess) -> None:
    status = live_host.status()
    assert status["state"] == "Running" and len(status["workers"]) == 1
    assert "queue_work" in status["functions"]
