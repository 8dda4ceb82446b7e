"""Blob triggers: new and changed blobs fire, path bindings, SDK-type and InputStream parameters,
output bindings, receipts across a restart, and the poison queue."""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path

from devtools.azurite import Azurite
from devtools.host.process import HostProcess
from tests.host.conftest import INBOX, Storage, start_host, wait_for


def _rows(storage: Storage, blob: str) -> list[dict]:
    return [row for row in storage.calls("blob_inbox") if row["blob"] == f"{INBOX}/{blob}"]


def test_new_and_changed_blobs_fire_once_per_version(live_host: HostProcess, host_storage: Storage) -> None:
    # How fast a blob fires is a figure for bench/, not an assertion: this waits for the event.
    name = f"{uuid.uuid4()}/contract.txt"
    host_storage.upload(INBOX, name, b"first version")
    rows = wait_for(lambda: _rows(host_storage, name), interval_s=0.05)
    assert rows[0]["length"] == len(b"first version")
    copy_blob = host_storage.blobs.get_blob_client("processed", f"{name}.copy")
    wait_for(copy_blob.exists)  # the outputs are written one after the other, the table row maybe first
    assert copy_blob.download_blob().readall() == b"FIRST VERSION"  # a blob output path built from {name}
    host_storage.upload(INBOX, name, b"second version")
    wait_for(lambda: len(_rows(host_storage, name)) == 2)
    # A version runs only while its receipt is incomplete: once both are complete, no run is missing.
    wait_for(lambda: len([r for r in host_storage.complete_receipts() if r.endswith(f"/{INBOX}/{name}")]) == 2)
    assert len(_rows(host_storage, name)) == 2  # one run per version, no more


def test_sdk_type_parameter_gets_a_real_blob_client(live_host: HostProcess, host_storage: Storage) -> None:
    name = f"{uuid.uuid4()}.bin"
    host_storage.upload("sdk-in", name, b"\x00" * 300_000)
    rows = wait_for(lambda: [r for r in host_storage.calls("blob_sdk") if r["blob"] == name])
    assert rows[0]["size"] == 300_000
    assert rows[0]["client_type"].startswith("azure.storage.blob")


def test_failing_blob_goes_to_poison_queue_after_five_tries(live_host: HostProcess, host_storage: Storage) -> None:
    name = f"poison-{uuid.uuid4()}.txt"
    etag = host_storage.upload(INBOX, name, b"bad")

    def poison_message() -> dict | None:
        for text in host_storage.raw_messages("webjobs-blobtrigger-poison"):
            message = json.loads(base64.b64decode(text))
            if message["BlobName"] == name:
                return message
        return None

    message = wait_for(poison_message)
    assert message["FunctionId"] == "Host.Functions.blob_inbox"
    assert (message["ContainerName"], message["BlobType"]) == (INBOX, "BlockBlob")
    assert message["ETag"].strip('"') == etag.strip('"')

    def tries_logged() -> list[dict]:
        return [e for e in live_host.events("host.invocation")
                if e["function"] == "blob_inbox" and e["outcome"] == "Failed"]

    # The host's output may trail the poison message: wait for the fifth try's line.
    tries = wait_for(lambda: len(tries_logged()) >= 5 and tries_logged())
    assert sorted(t["dequeue_count"] for t in tries)[-5:] == [1, 2, 3, 4, 5]


def test_receipts_survive_a_restart(fresh_azurite: Azurite, tmp_path: Path) -> None:
    storage = Storage(fresh_azurite.connection_string)
    host = start_host(fresh_azurite.connection_string, tmp_path)
    try:
        for index in range(3):
            storage.upload(INBOX, f"doc-{index}.txt", b"content")
        wait_for(lambda: len(storage.calls("blob_inbox")) == 3)
    finally:
        host.stop()
    receipts = [b.name for b in storage.blobs.get_container_client("azure-webjobs-hosts")
                .list_blobs(name_starts_with="blobreceipts/")]
    assert len(receipts) == 3
    assert all("/Host.Functions.blob_inbox/\"" in name and name.endswith(".txt") for name in receipts)
    host = start_host(fresh_azurite.connection_string, tmp_path)
    try:
        storage.upload(INBOX, "doc-new.txt", b"content")
        wait_for(lambda: len(storage.calls("blob_inbox")) == 4)
        # The scan that found doc-new also checked the older blobs: any of them it found without a
        # receipt went onto the work queue then. Once that queue is empty, every such run is counted.
        wait_for(lambda: len(storage.complete_receipts()) == 4 and storage.blob_work_left() == 0)
        blobs = sorted(row["blob"] for row in storage.calls("blob_inbox"))
        assert blobs == [f"{INBOX}/doc-{i}.txt" for i in range(3)] + [f"{INBOX}/doc-new.txt"]
    finally:
        host.stop()
