"""Connective's 30 MB per document: a 31 MB PDF dropped in signing-inbox/ is refused with a clear report and
no Connective call; a 29 MB PDF goes all the way to Archived. The sandbox refuses over 30 MB as Connective does."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import requests
from azure.storage.blob import BlobServiceClient

from bench._inputs import DroppedInput, InputSpec
from bench._progress import wait_until_settled
from bench._world import BenchWorld
from shared.pipeline.inputs import package_ref_for_blob
from shared.storage import names
from shared.storage.clients import StorageClients
from shared.storage.status import PackageStatus
from shared.storage.store import Store
from tests.conftest import SandboxHandle
from tests.contract.padded_pdf import padded_pdf

MB = 1024 * 1024


@pytest.fixture(scope="module")
def bench() -> Iterator[BenchWorld]:
    with BenchWorld(workers=1) as running:
        yield running


def _drop(bench: BenchWorld, name: str, size: int) -> DroppedInput:
    blobs = BlobServiceClient.from_connection_string(bench.connection_string)
    etag = blobs.get_blob_client(names.INBOX_CONTAINER, name).upload_blob(
        padded_pdf(size), metadata={"signers": "Sam Size <sam.size@example.com>"})["etag"]
    return DroppedInput(InputSpec(name), package_ref_for_blob("inb", names.INBOX_CONTAINER, name, etag), (name,))


def test_a_31_mb_pdf_is_refused_before_any_call_and_a_29_mb_pdf_is_archived(bench: BenchWorld) -> None:
    requests.post(f"{bench.admin_url}/reset", timeout=30).raise_for_status()
    store = Store(StorageClients(bench.connection_string))
    too_large, fitting = _drop(bench, "size-31mb.pdf", 31 * MB), _drop(bench, "size-29mb.pdf", 29 * MB)

    rows = wait_until_settled(store, [too_large, fitting], timeout_s=240, report_every_s=60)

    refused = rows[too_large.ref]
    assert refused.status is PackageStatus.INPUT_REJECTED and refused.error_report
    container, path = refused.error_report.split("/", 1)
    report = json.loads(store.clients.container(container).download_blob(path).readall())
    assert report["reason"]["code"] == "document_too_large"
    assert "31.0 MB" in report["reason"]["message"] and "the limit is 30 MB" in report["reason"]["message"]
    assert report["details"] == [{"document": "size-31mb.pdf", "sizeBytes": 31 * MB, "limitBytes": 30 * MB}]
    assert too_large.ref not in bench.stats()["calls_by_external_reference"]  # not one call for it
    archived = rows[fitting.ref]
    assert archived.status is PackageStatus.ARCHIVED
    assert bench.stats()["calls_by_external_reference"][fitting.ref] <= 4


def test_the_sandbox_refuses_a_document_over_30_mb_by_default(sandbox: SandboxHandle) -> None:
    over = padded_pdf(30 * MB + 1)
    answer = requests.post(f"{sandbox.base_url}/packages/instant", auth=(sandbox.user, sandbox.password), timeout=120,
                           files={"Data": (None, json.dumps({"Initiator": "owner@example.com",
                                                                    "DocumentName": "big"}), "application/json"),
                                  "Document": ("big.pdf", over, "application/pdf")})
    assert answer.status_code == 400 and "TooLarge" in answer.text
