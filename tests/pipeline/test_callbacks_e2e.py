"""End to end through the local host: a PDF dropped in the inbox, signed (or rejected) by the sandbox's
auto-sign, called back, read, archived. Checks the Table, the archive's sha256 and the call budget."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator

import pytest
import requests
from azure.storage.blob import BlobServiceClient

from devtools.world import LocalWorld
from shared.storage import names
from shared.storage.clients import StorageClients
from shared.storage.packages import PackageRecord
from shared.storage.status import PackageStatus
from shared.storage.store import Store
from tests.pipeline.intake_support import pdf_with_markers

pytestmark = [pytest.mark.slow]


@pytest.fixture(scope="module")
def world() -> Iterator[LocalWorld]:
    with LocalWorld(workers=1, settings_file=None, sandbox_args=["--auto-sign", "--auto-sign-delay", "1"],
                    extra_settings={"STATUS_REFRESH_DELAY_S": "2"}) as running:
        yield running


def drop(world: LocalWorld, name: str, signers: str) -> None:
    blobs = BlobServiceClient.from_connection_string(world.storage_connection_string)
    blobs.get_blob_client(names.INBOX_CONTAINER, name).upload_blob(pdf_with_markers(), overwrite=True,
                                                                  metadata={"Signers": signers})


def row_for(store: Store, name: str, status: PackageStatus, timeout_s: float = 60) -> PackageRecord:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for row in store.packages.query("Status eq @status", {"status": status.value}):
            if row.source_uri.endswith(name):
                return row
        time.sleep(0.5)
    seen = [(r.source_uri, r.status.value, r.last_error) for r in store.packages.query("PartitionKey ne ''")]
    raise AssertionError(f"{name} did not reach {status.value}: {seen}")


def sandbox_get(world: LocalWorld, path: str, **kwargs) -> requests.Response:
    return requests.get(f"{world.sandbox_root_url}{path}", timeout=10, **kwargs)


def test_an_auto_signed_package_is_archived_and_a_rejected_one_keeps_its_reason(world: LocalWorld) -> None:
    store = Store(StorageClients(world.storage_connection_string))
    drop(world, "e2e-signed.pdf", "Ann <ann@example.com>")
    drop(world, "e2e-rejected.pdf", "Rex <reject-me@example.com>")

    archived = row_for(store, "e2e-signed.pdf", PackageStatus.ARCHIVED)
    rejected = row_for(store, "e2e-rejected.pdf", PackageStatus.REJECTED)

    assert rejected.final_reason and rejected.final_reason.startswith("Rejected by")
    assert archived.signers[0]["status"] == "Finished" and archived.archived_files
    package_id = archived.connective_package_id
    assert package_id
    stats = sandbox_get(world, "/_sandbox/stats").json()
    assert stats["calls_by_package"][package_id] <= 4
    document = next(f for f in archived.archived_files if f["kind"] == "signed-document")
    container = store.clients.container(names.SIGNED_CONTAINER)
    archived_bytes = container.download_blob(document["blob"]).readall()
    served = sandbox_get(world, f"/webportalapi/v3/packages/{package_id}/download/{document['documentId']}",
                         auth=world.sandbox_credentials)
    assert served.status_code == 200
    assert hashlib.sha256(archived_bytes).hexdigest() == document["sha256"]
    assert document["sha256"] == hashlib.sha256(served.content).hexdigest()
