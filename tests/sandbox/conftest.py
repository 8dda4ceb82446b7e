"""Helpers for the sandbox tests: an API client, ready-made packages and a callback receiver."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest
import requests

from tests.conftest import SandboxHandle, wait_until
from tests.loopback import serving
from tests.sandbox.pdfs import make_pdf


class Api:
    """Thin requests wrapper: base URL, Basic auth, keep-alive."""

    def __init__(self, handle: SandboxHandle, version: str = "v3") -> None:
        self.handle = handle
        self.base = f"{handle.root_url}/webportalapi/{version}"
        self.session = requests.Session()
        self.session.auth = handle.auth

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 10)
        return self.session.request(method, self.base + path, **kwargs)

    def admin(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.handle.admin(method, path, **kwargs).json()

    def config(self, **knobs: Any) -> Any:
        return self.admin("POST", "config", json=knobs)

    def status(self, package_id: str) -> dict[str, Any]:
        response = self.call("GET", f"/packages/{package_id}/status")
        assert response.status_code == 200, response.text
        return response.json()

    def create(self, **extra: Any) -> str:
        body = {"PackageName": "Contract", "Initiator": "initiator@example.com", **extra}
        response = self.call("POST", "/packages", json=body)
        assert response.status_code == 201, response.text
        return response.json()["PackageId"]

    def add_document(self, package_id: str, pdf: bytes | None = None, **extra: Any) -> dict[str, Any]:
        body = {"DocumentName": "contract", "Document": b64(pdf or signable_pdf()), **extra}
        response = self.call("POST", f"/packages/{package_id}/documents", json=body)
        assert response.status_code == 200, response.text
        return response.json()

    def pending_package(self, signers: list[str] | None = None, sequential: bool = True,
                        **extra: Any) -> dict[str, Any]:
        """A Pending package, one document with one coordinate location per signer. Returns its status."""
        signers = signers or ["anna@example.com", "bert@example.com"]
        package_id = self.create(**extra)
        fields = [coordinates(top=100 + 60 * n) for n in range(len(signers))]
        locations = self.add_document(package_id, SigningFields=fields)["Locations"]
        stakeholders = [person(email, [locations[n]["Id"]], order=(n + 1) if sequential else 1)
                        for n, email in enumerate(signers)]
        response = self.call("PUT", f"/packages/{package_id}/process", json={"Stakeholders": stakeholders})
        assert response.status_code == 200, response.text
        response = self.call("PUT", f"/packages/{package_id}/status", json={"Status": "Pending"})
        assert response.status_code == 200, response.text
        return response.json() | {"PackageId": package_id}

    def act(self, package_id: str, actor_id: str, action: str, **body: Any) -> requests.Response:
        return requests.post(f"{self.handle.root_url}/_sandbox/packages/{package_id}/actors/{actor_id}/{action}",
                             json=body, timeout=10)

    def finished_package(self, **extra: Any) -> dict[str, Any]:
        package = self.pending_package(**extra)
        for actor_id in actor_ids(package):
            assert self.act(package["PackageId"], actor_id, "sign").status_code == 200
        return package


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def signable_pdf(**kwargs: Any) -> bytes:
    return make_pdf(**kwargs)


def coordinates(page: int = 1, left: float = 72, top: float = 100, width: float = 150, height: float = 50,
                label: str | None = None) -> dict[str, Any]:
    field_ = {"PageNumber": page, "Left": str(left), "Top": str(top), "Width": str(width), "Height": str(height)}
    return field_ | ({"Label": label} if label else {})


def person(email: str, location_ids: list[str], order: int = 1, kind: str = "Signer") -> dict[str, Any]:
    actor: dict[str, Any] = {"Type": kind, "OrderIndex": order}
    if kind == "Signer":
        actor["LocationIds"] = location_ids
    return {"EmailAddress": email, "FirstName": email.split("@")[0].title(), "LastName": "Tester",
            "Language": "en", "Actors": [actor]}


def actor_ids(status: dict[str, Any]) -> list[str]:
    return [actor["ActorId"] for holder in status["Stakeholders"] for actor in holder["Actors"]]


def actor_statuses(status: dict[str, Any]) -> list[str]:
    return [actor["ActorStatus"] for holder in status["Stakeholders"] for actor in holder["Actors"]]


@pytest.fixture()
def api(sandbox: SandboxHandle) -> Api:
    return Api(sandbox)


@dataclass
class Received:
    path: str
    body: Any
    at: float


@dataclass
class CallbackReceiver:
    """An HTTP endpoint that records POSTs and answers with the next code of `codes` (then 200)."""

    url: str
    received: list[Received] = field(default_factory=list)
    codes: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def wait_for(self, count: int, timeout_s: float = 60.0) -> list[Received]:
        wait_until(lambda: len(self.received) >= count, timeout_s)
        return list(self.received)


@pytest.fixture()
def receiver() -> Iterator[CallbackReceiver]:
    state = CallbackReceiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            with state.lock:
                code = state.codes.pop(0) if state.codes else 200
                if code < 300:
                    state.received.append(Received(self.path, json.loads(raw or b"null"), time.monotonic()))
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()

    with serving(Handler) as server:
        state.url = f"http://127.0.0.1:{server.server_port}"
        yield state
