"""Security through the local Functions host: keys on every route, the host's size limits, odd blob
names through the blob trigger, and a scan of every log line of an end-to-end run for secrets and
document bytes."""

from __future__ import annotations

import base64
import io
import os
import re
import socket
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from azure.storage.blob import BlobServiceClient
from pypdf import PdfWriter

from devtools.world import LocalWorld
from shared.config import Settings
from shared.pipeline.inputs import package_ref_for_blob
from shared.pipeline.tokens import callback_token
from shared.storage import names
from shared.storage.clients import StorageClients
from shared.storage.packages import PackageRecord
from shared.storage.status import PackageStatus
from shared.storage.store import Store
from tests.api.conftest import http_functions
from tests.conftest import wait_until
from tests.sandbox.pdfs import make_pdf

pytestmark = [pytest.mark.slow]

CANARY = f"CANARY{uuid.uuid4().hex.upper()}"  # text that only the test document holds
SECRET_SETTINGS = ("CONNECTIVE_PASSWORD", "CALLBACK_SECRETS", "HOST_FUNCTION_KEYS", "HOST_MASTER_KEY",
                   "WEBHOOK_SIGNING_SECRET")
# The dev host prints the function key once in its start banner, as `func start` does for local keys;
# that console line is the only place it may appear.
BANNER_KEY_LINE = re.compile(r"^Function key \(from HOST_FUNCTION_KEYS\): ")


class CapturedWorld:
    """A LocalWorld whose sandbox writes its output to a file; the host's lines are kept by HostProcess."""

    def __init__(self) -> None:
        self.sandbox_log = Path(tempfile.mkstemp(prefix="security-sandbox-", suffix=".log")[1])
        self.world = LocalWorld(
            workers=1, settings_file=None, echo=True, sandbox_args=["--auto-sign", "--auto-sign-delay", "1"],
            extra_settings={"STATUS_REFRESH_DELAY_S": "2", "API_MAX_BODY_MB": "1",
                            "CALLBACK_SECRETS": f"cb-new-{uuid.uuid4().hex},cb-old-{uuid.uuid4().hex}",
                            "WEBHOOK_SIGNING_SECRET": f"whsec-{uuid.uuid4().hex}"})

    def __enter__(self) -> LocalWorld:
        # The sandbox inherits stdout/stderr when the world echoes; point both at a file while it starts.
        saved = os.dup(1), os.dup(2)
        with self.sandbox_log.open("wb") as target:
            os.dup2(target.fileno(), 1)
            os.dup2(target.fileno(), 2)
            try:
                self.world.start()
            finally:
                os.dup2(saved[0], 1)
                os.dup2(saved[1], 2)
                os.close(saved[0])
                os.close(saved[1])
        return self.world

    def __exit__(self, *exc: object) -> None:
        self.world.stop()

    def log_lines(self) -> list[str]:
        assert self.world.host is not None
        sandbox = self.sandbox_log.read_text(encoding="utf-8", errors="replace").splitlines()
        return [*self.world.host.lines, *sandbox]


@pytest.fixture(scope="module")
def captured() -> Iterator[CapturedWorld]:
    capture = CapturedWorld()
    with capture:
        yield capture
    capture.sandbox_log.unlink(missing_ok=True)


@pytest.fixture(scope="module")
def world(captured: CapturedWorld) -> LocalWorld:
    return captured.world


def store_of(world: LocalWorld) -> Store:
    return Store(StorageClients(world.storage_connection_string))


def wait_for_row(store: Store, ref: str, statuses: set[PackageStatus], timeout_s: float = 60) -> PackageRecord:
    deadline = time.monotonic() + timeout_s
    record = None
    while time.monotonic() < deadline:
        record = store.packages.get(ref)
        if record is not None and record.status in statuses:
            return record
        time.sleep(0.3)
    raise AssertionError(f"{ref} did not reach {statuses}: {record}")


def _example_path(route: str) -> str:
    return "/api/" + re.sub(r"\{\w+\??\}", "x-example", route)


# ---- function keys -------------------------------------------------------------------------------------

def test_every_route_but_health_refuses_a_missing_or_wrong_key(world: LocalWorld) -> None:
    served = {route.removeprefix("/api/") for route in world.host.status()["routes"].values()}  # type: ignore[union-attr]
    declared = {route: methods for _name, route, methods, _f in http_functions()}
    assert served == set(declared), "the host serves exactly the app's HTTP functions"
    for route, methods in declared.items():
        url = world.host_url + _example_path(route)
        for method in methods:
            if route == "health":
                assert requests.request(method, url, timeout=10).status_code == 200
                continue
            if route.startswith("callbacks/"):  # anonymous: the token in the path is checked by the app itself
                answer = requests.request(method, url, timeout=10)
                assert answer.status_code == 401, (method, route)
                assert answer.headers["Content-Type"].startswith("application/problem+json")
                continue
            for presented in ({}, {"x-functions-key": "wrong-" + world.function_key}, {"x-functions-key": ""},
                              {"code": world.master_key[:-1]}):
                headers = {k: v for k, v in presented.items() if k != "code"}
                params = {k: v for k, v in presented.items() if k == "code"}
                refused = requests.request(method, url, headers=headers, params=params, timeout=10)
                assert refused.status_code == 401 and refused.content == b"", (method, route)  # the host refused
            keyed = requests.request(method, url, headers={"x-functions-key": world.function_key}, timeout=10)
            # With the key the app answers itself (the callback routes then check their own token: 401 problem).
            assert keyed.status_code != 401 or keyed.headers["Content-Type"].startswith("application/problem+json")


# ---- the host's limits ---------------------------------------------------------------------------------

def _raw_request(world: LocalWorld, head: bytes) -> bytes:
    port = int(world.host_url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(head)
        return connection.recv(4096)


def test_a_declared_body_over_the_host_limit_is_413_before_it_is_read(world: LocalWorld) -> None:
    head = (f"POST /api/packages HTTP/1.1\r\nHost: x\r\nx-functions-key: {world.function_key}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {500 * 1024 * 1024}\r\n\r\n").encode()
    assert _raw_request(world, head).startswith(b"HTTP/1.1 413")


def test_a_body_over_the_api_limit_is_a_413_problem(world: LocalWorld) -> None:
    body = b'{"name": "' + b"x" * (1024 * 1024 + 10) + b'"}'
    answer = requests.post(f"{world.host_url}/api/packages", data=body, timeout=30,
                           headers={"x-functions-key": world.function_key, "Content-Type": "application/json"})
    assert answer.status_code == 413 and answer.headers["Content-Type"].startswith("application/problem+json")
    assert "larger than the limit" in answer.json()["detail"]


def test_oversized_headers_are_431(world: LocalWorld) -> None:
    long_header = f"GET /api/health HTTP/1.1\r\nHost: x\r\nX-Filler: {'a' * 70_000}\r\n\r\n".encode()
    assert _raw_request(world, long_header).split(b"\r\n")[0].endswith(b" 431 Line too long")
    many = "".join(f"X-H{i}: v\r\n" for i in range(150))
    status_line = _raw_request(world, f"GET /api/health HTTP/1.1\r\nHost: x\r\n{many}\r\n".encode()).split(b"\r\n")[0]
    assert b" 431 " in status_line
    assert requests.get(f"{world.host_url}/api/health", timeout=10).status_code == 200  # the host still serves


# ---- odd blob names through the blob trigger ----------------------------------------------------------

def test_odd_inbox_names_through_the_blob_trigger(world: LocalWorld) -> None:
    blobs = BlobServiceClient.from_connection_string(world.storage_connection_string)
    store = store_of(world)
    refs = {}
    for name in (f"odd/na\u00efve #1 ' or 1 eq 1 {uuid.uuid4().hex[:6]}.pdf",
                 f"odd/\u202etxt.{uuid.uuid4().hex[:6]}.pdf", f"odd/a#b?c&d=%00 {uuid.uuid4().hex[:6]}.pdf"):
        etag = blobs.get_blob_client(names.INBOX_CONTAINER, name).upload_blob(
            b"not a pdf", metadata={"signers": "Anna <anna@example.com>"})["etag"]
        refs[name] = package_ref_for_blob("inb", names.INBOX_CONTAINER, name, etag)
    for name, ref in refs.items():
        record = wait_for_row(store, ref, {PackageStatus.INPUT_REJECTED})
        assert record.source_uri == f"{names.INBOX_CONTAINER}/{name}" and record.error_report
        assert blobs.get_blob_client(names.INBOX_CONTAINER, name).exists()


# ---- no secret and no document bytes in any log line ---------------------------------------------------

def _secrets(world: LocalWorld, refs: list[str]) -> dict[str, str]:
    found = {}
    for setting in SECRET_SETTINGS:
        for index, value in enumerate(v.strip() for v in world.settings.get(setting, "").split(",")):
            if len(value) >= 8:
                found[f"{setting}[{index}]"] = value
    settings = Settings(world.settings)
    for ref in refs:
        found[f"callback token of {ref}"] = callback_token(settings, ref)
    return found


def _document_patterns(document: bytes) -> dict[str, str]:
    """The canary, and every 3-byte-aligned 32-character slice of the document's base64: a log that held
    the document (or a long part of it) in base64 would hold at least one of them."""
    encoded = base64.b64encode(document).decode()
    patterns = {"canary": CANARY, "canary base64": base64.b64encode(CANARY.encode()).decode()[:-4]}
    patterns.update({f"document base64 @{i}": encoded[i:i + 32] for i in range(0, len(encoded) - 32, 4)})
    return patterns


def _canary_pdf() -> bytes:
    """A signable PDF whose bytes hold CANARY uncompressed (in its document information)."""
    writer = PdfWriter(clone_from=io.BytesIO(make_pdf(markers={1: ["#SIGN1#"]})))
    writer.add_metadata({"/Subject": CANARY})
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_logs_of_an_end_to_end_run_hold_no_secret_and_no_document_bytes(captured: CapturedWorld,
                                                                        world: LocalWorld) -> None:
    document = _canary_pdf()
    assert CANARY.encode() in document  # the pattern is really in the bytes we send
    store = store_of(world)
    blobs = BlobServiceClient.from_connection_string(world.storage_connection_string)
    name = f"security/{uuid.uuid4().hex}.pdf"
    etag = blobs.get_blob_client(names.INBOX_CONTAINER, name).upload_blob(
        document, metadata={"signers": "Log Scan <log.scan@example.com>"})["etag"]
    inbox_ref = package_ref_for_blob("inb", names.INBOX_CONTAINER, name, etag)

    keyed = {"x-functions-key": world.function_key}
    created = requests.post(f"{world.host_url}/api/packages", headers=keyed, timeout=30, json={
        "schemaVersion": "1", "name": "Log scan",
        "documents": [{"content": base64.b64encode(document).decode(), "name": "Scan"}],
        "signers": [{"name": "Api Signer", "email": "api.signer@example.com"}]})
    assert created.status_code == 202, created.text
    api_ref = created.json()["packageRef"]
    bad_token = requests.post(f"{world.host_url}/api/callbacks/connective/{inbox_ref}", timeout=10,
                              params={"token": "forged-" + CANARY, "code": world.function_key},
                              json={"PackageStatus": "Finished"})
    assert bad_token.status_code == 401

    for ref in (inbox_ref, api_ref):
        wait_for_row(store, ref, {PackageStatus.ARCHIVED}, timeout_s=90)
    # The row turns Archived a moment before the archive logs that it is done: wait for those lines,
    # the last each package's run writes, so the scan covers both runs whole.
    wait_until(lambda: all(any("archive.done" in line and ref in line for line in captured.log_lines())
                           for ref in (inbox_ref, api_ref)), timeout_s=60, interval_s=0.2)

    lines = [line for line in captured.log_lines() if not BANNER_KEY_LINE.match(line)]
    assert any(inbox_ref in line for line in lines) and any(api_ref in line for line in lines)
    needles = {**_secrets(world, [inbox_ref, api_ref]), **_document_patterns(document)}
    leaks = sorted({label for line in lines for label, needle in needles.items() if needle in line})
    assert leaks == [], f"found in the logs: {leaks[:10]}"
