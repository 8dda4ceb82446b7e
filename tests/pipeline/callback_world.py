"""Helpers for the callback, status and archive tests: settings, a client per test, packages in the
sandbox, a row in Azurite, and a recorder that captures the sandbox's callbacks for replay."""

from __future__ import annotations

import base64
import io
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from reportlab.pdfgen import canvas

from shared.config import Settings
from shared.connective import ConnectiveClient, ConnectiveConfig, LocalRateLimiter, RetryConfig
from shared.connective.ratelimit import RateLimiter
from shared.pipeline.tokens import callback_token
from shared.storage.clients import StorageClients
from shared.storage.packages import PackageRecord
from shared.storage.status import PackageStatus
from shared.storage.store import Store
from tests.conftest import SandboxHandle
from tests.conftest import wait_until as shared_wait_until
from tests.loopback import serving

SECRET = "callback-secret-for-tests"
SIGNATURE_BOX = {"PageNumber": 1, "Left": "72", "Top": "600", "Width": "180", "Height": "60"}


def settings_for(sandbox: SandboxHandle, connection_string: str, **extra: str) -> Settings:
    return Settings(env_for(sandbox, connection_string, **extra))


def env_for(sandbox: SandboxHandle, connection_string: str, **extra: str) -> dict[str, str]:
    """The app settings of a callback world, as the environment holds them."""
    return {
        "DocumentStorage": connection_string,
        "CONNECTIVE_BASE_URL": sandbox.base_url,
        "CONNECTIVE_USERNAME": sandbox.user,
        "CONNECTIVE_PASSWORD": sandbox.password,
        "CALLBACK_SECRETS": SECRET,
        "STATUS_REFRESH_DELAY_S": "1",
        "ARCHIVE_RETRY_DELAY_S": "1",
        **extra,
    }


def client_for(sandbox: SandboxHandle, limiter: RateLimiter | None = None) -> ConnectiveClient:
    config = ConnectiveConfig(base_url=sandbox.base_url, username=sandbox.user, password=sandbox.password,
                              read_timeout_s=10, retry=RetryConfig(max_attempts=3, total_s=10), rate_calls=10_000)
    return ConnectiveClient(config, limiter or LocalRateLimiter(10_000, 60))


def exhausted_limiter(window_s: float = 2.0) -> LocalRateLimiter:
    """A limiter whose only token is spent: the next call would wait about `window_s`."""
    limiter = LocalRateLimiter(1, window_s, send_allowance_s=0.0)
    limiter.acquire(0)
    return limiter


def store_for(connection_string: str) -> Store:
    return Store(StorageClients(connection_string))


def new_ref() -> str:
    return f"cb-{uuid.uuid4().hex[:12]}"


def token_for(ref: str) -> str:
    return callback_token(Settings({"CALLBACK_SECRETS": SECRET}), ref)


def pdf(text: str) -> bytes:
    buffer = io.BytesIO()
    sheet = canvas.Canvas(buffer)
    sheet.drawString(72, 780, text)
    sheet.showPage()
    sheet.save()
    return buffer.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def stakeholder(email: str, location_ids: list[str] | None = None, order: int = 1,
                fields: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    actor: dict[str, Any] = {"Type": "Signer", "OrderIndex": order, "SigningTypes": [{"SigningType": "Manual"}]}
    if location_ids is not None:
        actor["LocationIds"] = location_ids
    if fields is not None:
        actor["SigningFields"] = fields
    return {"EmailAddress": email, "FirstName": email.split("@")[0].title(), "LastName": "Tester", "Language": "en",
            "Actors": [actor]}


def instant_package(client: ConnectiveClient, ref: str, signers: list[str], callback_url: str | None = None,
                    document_name: str = "contract") -> str:
    """A Pending one-document package, one location per signer. Returns its PackageId."""
    body: dict[str, Any] = {
        "Initiator": "owner@example.com", "DocumentName": document_name, "ExternalPackageReference": ref,
        "Stakeholders": [stakeholder(email, fields=[{**SIGNATURE_BOX, "Top": str(600 - 80 * n)}], order=n + 1)
                         for n, email in enumerate(signers)],
    }
    if callback_url:
        body["CallBackUrl"] = callback_url
        body["NotificationCallBackUrl"] = callback_url.replace("/callback/", "/notify/")
    return client.create_instant_package(body, pdf(f"{document_name} for {ref}")).package_id


def multi_document_package(client: ConnectiveClient, ref: str, names: list[str], signer: str) -> str:
    created = client.create_package({"Initiator": "owner@example.com", "PackageName": ref,
                                     "ExternalPackageReference": ref})
    location_ids = []
    for name in names:
        added = client.add_document_to_package(created.package_id, {"DocumentName": name,
                                                                    "SigningFields": [SIGNATURE_BOX]},
                                               pdf(f"{name} of {ref}"))
        location_ids.append(added.locations[0].id)
    client.set_process_information(created.package_id, {"Stakeholders": [stakeholder(signer, location_ids)]})
    client.set_package_status(created.package_id, "Pending")
    return created.package_id


def pending_row(store: Store, client: ConnectiveClient, recorder: Recorder, signers: list[str]) -> tuple[str, str]:
    """A package pending at the sandbox, its callbacks going to `recorder`, and its Pending row: (ref, package id)."""
    ref = new_ref()
    package_id = instant_package(client, ref, signers, recorder.callback_url(ref))
    insert_row(store, ref, package_id)
    return ref, package_id


def insert_row(store: Store, ref: str, package_id: str | None, status: PackageStatus = PackageStatus.PENDING,
               **fields: Any) -> PackageRecord:
    record, _ = store.packages.insert(PackageRecord(ref=ref, status=status, source="api",
                                                    connective_package_id=package_id, **fields))
    return record


def actors(sandbox: SandboxHandle, package_id: str) -> list[dict[str, Any]]:
    state = sandbox.admin("GET", f"packages/{package_id}").json()
    return [actor for holder in state["stakeholders"] for actor in holder["actors"]]


def act(sandbox: SandboxHandle, package_id: str, actor_id: str, action: str, **body: Any) -> None:
    sandbox.admin("POST", f"packages/{package_id}/actors/{actor_id}/{action}", json=body)


def calls(sandbox: SandboxHandle, package_id: str) -> int:
    return int(sandbox.admin("GET", "stats").json()["calls_by_package"].get(package_id, 0))


def calls_by_operation(sandbox: SandboxHandle) -> dict[str, int]:
    return dict(sandbox.admin("GET", "stats").json()["calls_by_operation"])


def queued(store: Store, queue_name: str, ref: str, wait_s: float = 0.0) -> list[dict[str, Any]]:
    """Messages for `ref` that are visible now (after `wait_s`), taken off the queue."""
    if wait_s:
        time.sleep(wait_s)
    client = store.clients.queue(queue_name)
    found = []
    for message in client.receive_messages(messages_per_page=32, visibility_timeout=5):
        body = json.loads(message.content)
        if body.get("packageRef") == ref:
            found.append(body)
            client.delete_message(message)
    return found


def wait_until(predicate: Callable[[], Any], timeout_s: float = 60.0) -> Any:
    """The shared polling helper, with the longer wait that callbacks through the sandbox need."""
    return shared_wait_until(predicate, timeout_s=timeout_s, interval_s=0.05)


@dataclass
class Captured:
    kind: str  # callback | notify
    ref: str
    query: dict[str, str]
    body: bytes


@dataclass
class Recorder:
    """Stands in for the function app's callback URLs: records what the sandbox sends, answers 200."""

    base_url: str
    captured: list[Captured] = field(default_factory=list)

    def callback_url(self, ref: str) -> str:
        return f"{self.base_url}/callback/{ref}?token={token_for(ref)}"

    def for_ref(self, ref: str, kind: str = "callback") -> list[Captured]:
        return [item for item in list(self.captured) if item.ref == ref and item.kind == kind]


def start_recorder() -> tuple[Recorder, Callable[[], None]]:
    captured: list[Captured] = []
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            parts = urlsplit(self.path)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            _, kind, ref = parts.path.split("/", 2)
            with lock:
                captured.append(Captured(kind, ref, dict(parse_qsl(parts.query)), body))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    running = ExitStack()
    server = running.enter_context(serving(Handler))
    return Recorder(f"http://127.0.0.1:{server.server_address[1]}", captured), running.close


def recorder_fixture() -> Iterator[Recorder]:
    recorder, stop = start_recorder()
    try:
        yield recorder
    finally:
        stop()
