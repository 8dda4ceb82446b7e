"""The abuse run: the worst inputs the attack found, dropped beside good ones, through the local host.

Azurite, the sandbox (auto-signing) and the local Functions host run the real app. Good inputs (inbox
PDFs, a batch, an API request) go in beside: a manifest with a NUL byte in a marker, a memory-bomb PDF, a
valid package whose row is larger than one Table property, a batch of thirty long-named documents (whose
file list outgrows one property), and a flood of callbacks on a live package. Every good input (the large
ones included) must reach Archived; every bad one must have an error report; no callback answers 500.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from azure.storage.blob import BlobServiceClient

from devtools.world import LocalWorld
from shared.config import Settings
from shared.pipeline.inputs import package_ref_for_blob
from shared.pipeline.tokens import callback_url
from shared.storage import names
from shared.storage.clients import StorageClients
from shared.storage.packages import PackageRecord
from shared.storage.status import PackageStatus
from shared.storage.store import Store
from tests.pipeline.intake_support import manifest, pdf_with_markers, signer
from tests.security.test_attack_defects import bomb_pdf, crowded_signers

pytestmark = [pytest.mark.slow]

SIGNERS = {"signers": "Ann Abuse <ann.abuse@example.com>"}


@pytest.fixture(scope="module")
def world() -> Iterator[LocalWorld]:
    with LocalWorld(workers=1, settings_file=None, sandbox_args=["--auto-sign", "--auto-sign-delay", "0"],
                    extra_settings={"STATUS_REFRESH_DELAY_S": "2", "CONNECTIVE_RATE_CALLS": "1000"}) as running:
        yield running


def _wait_for(store: Store, refs: list[str], statuses: set[PackageStatus],
              timeout_s: float) -> dict[str, PackageRecord]:
    deadline = time.monotonic() + timeout_s
    rows: dict[str, PackageRecord | None] = {}
    while time.monotonic() < deadline:
        rows = {ref: store.packages.get(ref) for ref in refs}
        if all(row is not None and row.status in statuses for row in rows.values()):
            return rows  # type: ignore[return-value]
        time.sleep(0.5)
    late = {ref: row.status.value if row else None for ref, row in rows.items()
            if row is None or row.status not in statuses}
    raise AssertionError(f"not {sorted(s.value for s in statuses)} in time: {late}")


def _upload_batch(blobs: BlobServiceClient, body: dict, documents: dict[str, bytes]) -> str:
    folder = f"abuse-{uuid.uuid4().hex[:10]}"
    for path, data in documents.items():
        blobs.get_blob_client(names.BATCHES_CONTAINER, f"{folder}/{path}").upload_blob(data)
    etag = blobs.get_blob_client(names.BATCHES_CONTAINER, f"{folder}/manifest.json").upload_blob(
        json.dumps(body).encode())["etag"]
    return package_ref_for_blob("bat", names.BATCHES_CONTAINER, f"{folder}/manifest.json", etag)


def _upload_inbox(blobs: BlobServiceClient, data: bytes) -> str:
    name = f"abuse/{uuid.uuid4().hex[:10]}.pdf"
    etag = blobs.get_blob_client(names.INBOX_CONTAINER, name).upload_blob(data, metadata=SIGNERS)["etag"]
    return package_ref_for_blob("inb", names.INBOX_CONTAINER, name, etag)


def test_the_worst_inputs_beside_good_ones(world: LocalWorld) -> None:
    store = Store(StorageClients(world.storage_connection_string))
    blobs = BlobServiceClient.from_connection_string(world.storage_connection_string)
    marked = pdf_with_markers("#SIGN1#")

    good = [_upload_inbox(blobs, marked) for _ in range(3)]
    good.append(_upload_batch(blobs, manifest(["a.pdf", "b.pdf"], [signer("Bo Batch", "bo@example.com")]),
                              {"a.pdf": marked, "b.pdf": marked}))
    posted = requests.post(f"{world.host_url}/api/packages", timeout=60,
                           headers={"x-functions-key": world.function_key, "Idempotency-Key": uuid.uuid4().hex},
                           json={"schemaVersion": "1", "name": "Abuse run",
                                 "documents": [{"content": base64.b64encode(marked).decode(), "name": "Api"}],
                                 "signers": [{"name": "Api Signer", "email": "api.signer@example.com"}]})
    assert posted.status_code == 202, posted.text
    good.append(posted.json()["packageRef"])
    # Valid, but the largest a row or an archive gets: they must go through like the others.
    good.append(_upload_batch(blobs, manifest(["a.pdf"], crowded_signers()), {"a.pdf": marked}))
    long_names = {f"{index:02d}-annex-{'n' * 60}.pdf": marked for index in range(30)}
    good.append(_upload_batch(blobs, {**manifest(list(long_names), [signer("Long Names", "long@example.com")]),
                                      "documents": [{"path": p, "name": p[:-4]} for p in long_names]},
                              long_names))

    nul_marker = _upload_batch(blobs, manifest(["a.pdf"], [signer("Nul Marker", "nul@example.com", locations=[
        {"document": 0, "marker": "#SIGN\u00001#"}])]), {"a.pdf": marked})
    bomb = _upload_inbox(blobs, bomb_pdf())
    bad = {nul_marker: "schema_invalid", bomb: "pdf_too_complex"}

    # A flood of callbacks on the first good package as soon as it is out for signing.
    flooded = _wait_for(store, good[:1], {PackageStatus.PENDING, PackageStatus.FINISHED, PackageStatus.ARCHIVED},
                        timeout_s=120)[good[0]]
    settings = Settings({**world.settings})
    url = callback_url(settings, flooded.ref).replace(settings.public_base_url.rstrip("/"), world.host_url)
    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(lambda _: requests.post(url, json={"PackageStatus": "Pending"}, timeout=60).status_code,
                                range(100)))
    assert set(Counter(answers)) <= {200, 503}, Counter(answers)

    rejected = _wait_for(store, list(bad), {PackageStatus.INPUT_REJECTED}, timeout_s=180)
    for ref, code in bad.items():
        report_path = rejected[ref].error_report or ""
        container, _, blob = report_path.partition("/")
        report = json.loads(blobs.get_blob_client(container, blob).download_blob().readall())
        assert report["reason"]["code"] == code, report["reason"]
    _wait_for(store, good, {PackageStatus.ARCHIVED}, timeout_s=420)
