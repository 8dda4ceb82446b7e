"""The sandbox's document files: multipart uploads go straight into the store (nothing left behind by a
refused or partly used body), and signed files are made as a package finishes."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.ports import free_port
from devtools.sandbox.knobs import Knobs
from devtools.sandbox.sandbox import Sandbox
from devtools.sandbox.server import make_server
from tests.conftest import SandboxHandle
from tests.sandbox.conftest import Api
from tests.sandbox.pdfs import make_pdf


@pytest.fixture
def local() -> Iterator[tuple[Api, Sandbox]]:
    """A sandbox in this process, so its document store can be looked at."""
    handle = SandboxHandle(port=free_port(), user="tester", password="document-files-pw", process=None)  # type: ignore[arg-type]
    sandbox = Sandbox(Knobs(), {handle.user: handle.password}, bind_url=handle.root_url)
    server = make_server(sandbox, "127.0.0.1", handle.port)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield Api(handle), sandbox
    finally:
        server.shutdown()
        server.server_close()
        sandbox.close()


def stored_files(sandbox: Sandbox) -> list[Path]:
    return sorted(sandbox.store.root.iterdir())


def test_the_document_part_is_the_stored_file_and_unused_parts_are_dropped(local: tuple[Api, Sandbox]) -> None:
    api, sandbox = local
    package_id = api.create()
    document = make_pdf(markers={1: ["#S#"]})
    files = {
        "Document": ("doc.pdf", document, "application/pdf"),
        "Data": (None, '{"DocumentName": "d", "SigningFields": [{"MarkerOrFieldId": "#S#"}]}', "application/json"),
        "Unexpected": ("extra.bin", b"x" * 300_000, "application/octet-stream"),
    }
    response = api.call("POST", f"/packages/{package_id}/documents", files=files)
    assert response.status_code == 200, response.text
    assert response.json()["Locations"][0]["Label"] == "#S#"
    assert [path.read_bytes() for path in stored_files(sandbox)] == [document]


def test_a_malformed_or_refused_multipart_body_leaves_no_file(local: tuple[Api, Sandbox]) -> None:
    api, sandbox = local
    package_id = api.create()
    cut_off = (b"--b\r\nContent-Disposition: form-data; name=\"Document\"; filename=\"d.pdf\"\r\n\r\n"
               + make_pdf() + b"\r\n--b")  # no closing boundary
    response = api.call("POST", f"/packages/{package_id}/documents", data=cut_off,
                        headers={"Content-Type": "multipart/form-data; boundary=b"})
    assert response.status_code == 400 and response.json()["ErrorCode"] == "Request.InvalidMultipart"
    not_a_pdf = {"Data": (None, '{"DocumentName": "d"}', "application/json"),
                 "Document": ("d.pdf", b"not a pdf at all", "application/pdf")}
    assert api.call("POST", f"/packages/{package_id}/documents", files=not_a_pdf).status_code == 400
    assert stored_files(sandbox) == []


def test_signed_files_are_made_when_the_package_finishes_not_when_fetched(local: tuple[Api, Sandbox]) -> None:
    api, sandbox = local
    package_id = api.finished_package()["PackageId"]
    document = sandbox.packages[package_id].documents[0]
    deadline = time.monotonic() + 60  # bounds a broken run only
    while document.signed_path is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert document.signed_path is not None and document.signed_path.exists()
    served = api.call("GET", f"/packages/{package_id}/download/{document.id}")
    assert served.status_code == 200 and served.content == document.signed_path.read_bytes()
    assert served.content.startswith(document.path.read_bytes())  # the stamp is an incremental update
