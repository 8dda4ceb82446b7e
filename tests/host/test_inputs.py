"""Blob input bindings, as bytes and as the SDK's BlobClient, with paths from the trigger's metadata."""

from __future__ import annotations

import json
from pathlib import Path

from devtools.azurite import Azurite
from devtools.host.process import HostProcess
from tests.host.conftest import Storage, host_env, wait_for


def test_blob_inputs_as_bytes_and_as_a_client(azurite: Azurite, host_storage: Storage, tmp_path: Path) -> None:
    host_storage.upload("inputs", "note.txt", b"input content")
    with HostProcess(app="tests.host.apps.input_app", env=host_env(azurite.connection_string),
                     settings=tmp_path / "none.json"):
        host_storage.send("input-requests", json.dumps({"name": "note.txt"}))
        report_blob = host_storage.blobs.get_blob_client("input-reports", "note.txt.json")
        wait_for(report_blob.exists)
    report = json.loads(report_blob.download_blob().readall())
    assert report == {"content": "input content", "client_blob": "note.txt", "client_size": len(b"input content")}
