"""Helpers for the intake and creation tests: settings on Azurite + sandbox, uploads, PDFs, reports."""

from __future__ import annotations

import io
import json
import uuid
from typing import Any

import pytest
from azure.storage.blob import BlobClient
from pypdf import PdfWriter

from shared.config import Settings
from shared.connection import connective_client
from shared.connective.client import ConnectiveClient
from shared.storage import names
from shared.storage.packages import PackageRecord
from shared.storage.store import Store
from tests.conftest import SandboxHandle
from tests.sandbox.pdfs import make_pdf

INITIATOR = "initiator@example.com"


def base_env(connection_string: str, sandbox: SandboxHandle | None = None, **extra: str) -> dict[str, str]:
    env = {
        "DocumentStorage": connection_string,
        "CALLBACK_SECRETS": "intake-test-secret",
        "DEFAULT_INITIATOR": INITIATOR,
        "PUBLIC_BASE_URL": "http://127.0.0.1:9",
        "CONNECTIVE_USERNAME": "nobody",
        "CONNECTIVE_RETRY_MAX_ATTEMPTS": "2",
        "CONNECTIVE_RETRY_TOTAL_S": "5",
    }
    if sandbox is not None:
        env.update({"CONNECTIVE_BASE_URL": sandbox.base_url, "CONNECTIVE_USERNAME": sandbox.user,
                    "CONNECTIVE_PASSWORD": sandbox.password})
    env.update(extra)
    return env


class World:
    """Settings, store and client of one test, and shortcuts to upload inputs and read results."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.settings = Settings(env)
        self.store = Store.from_settings(self.settings)
        # The session's Azurite is shared, and peeking sees only the 32 oldest messages: start empty so
        # `queued_refs` sees this test's own.
        self.store.clients.queue(names.PACKAGE_REQUESTS_QUEUE).clear_messages()

    @property
    def client(self) -> ConnectiveClient:
        return connective_client(self.settings).with_rate_wait(2.0)

    def upload(self, container: str, name: str, data: bytes, metadata: dict[str, str] | None = None) -> BlobClient:
        blob = self.store.clients.container(container).get_blob_client(name)
        blob.upload_blob(data, overwrite=True, metadata=metadata)
        return blob

    def row(self, ref: str) -> PackageRecord:
        record = self.store.packages.get(ref)
        assert record is not None, f"no row {ref}"
        return record

    def report(self, record: PackageRecord) -> dict[str, Any]:
        assert record.error_report and record.error_report.startswith(names.ERRORS_CONTAINER + "/")
        path = record.error_report.split("/", 1)[1]
        data = self.store.clients.container(names.ERRORS_CONTAINER).download_blob(path).readall()
        return json.loads(data)

    def queued_refs(self) -> list[str]:
        queue = self.store.clients.queue(names.PACKAGE_REQUESTS_QUEUE)
        return [json.loads(message.content)["packageRef"] for message in queue.peek_messages(max_messages=32)]


def unique(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def pdf_with_markers(*markers: str, pages: int = 1) -> bytes:
    return make_pdf(pages=pages, markers={pages: list(markers)} if markers else None)


def encrypted_pdf() -> bytes:
    writer = PdfWriter(clone_from=io.BytesIO(make_pdf()))
    writer.encrypt("owner-and-user")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def deeply_nested_pdf(depth: int = 20000) -> bytes:
    """A structurally valid PDF whose page dictionary holds an array nested `depth` levels deep."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Deep " + b"[" * depth + b"]" * depth + b" >>",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(f"{number} 0 obj\n".encode() + body + b"\nendobj\n")
    xref = out.tell()
    out.write(f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode())
    for offset in offsets:
        out.write(f"{offset:010d} 00000 n \n".encode())
    out.write(f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode())
    return out.getvalue()


def manifest(documents: list[str], signers: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"schemaVersion": "1", "name": "Batch contract", "documents": [{"path": d} for d in documents],
            "signers": signers, **extra}


def signer(name: str, email: str, order: int = 1, **extra: Any) -> dict[str, Any]:
    return {"name": name, "email": email, "order": order, **extra}


@pytest.fixture()
def storage_world(storage_connection_string: str) -> World:
    return World(base_env(storage_connection_string))
