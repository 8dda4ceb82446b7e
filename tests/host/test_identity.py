"""The identity path: a blob trigger whose connection is `DocumentStorage__blobServiceUri` (user-assigned
identity, as infra/ configures it), served through the worker's blob extension, against Azurite over
HTTPS with bearer tokens from a managed-identity endpoint on loopback.

What this does not verify: Entra ID itself (the tokens here are unsigned, and Azurite does not check
signatures), the role assignments that grant the identity access (infra/), and the platform's own
identity endpoint beyond its documented protocol.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.storage.blob import BlobServiceClient

from devtools.azurite import Azurite
from devtools.host.process import HostProcess
from tests.conftest import _require_azurite
from tests.host.conftest import wait_for
from tests.host.identity import STORAGE_AUDIENCE, TokenEndpoint, loopback_certificate

CLIENT_ID = "5a7e0d7c-1f5e-4c33-9d69-4f7b0c5e2a11"


@pytest.fixture()
def tls_azurite(tmp_path: Path) -> Iterator[tuple[Azurite, Path]]:
    _require_azurite()
    cert, key = loopback_certificate(tmp_path)
    with Azurite(tls=(cert, key), oauth=True) as azurite:
        yield azurite, cert


def test_blob_trigger_on_an_identity_connection(tls_azurite: tuple[Azurite, Path], tmp_path: Path) -> None:
    azurite, cert = tls_azurite
    with TokenEndpoint() as identity:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DocumentStorage")}
        env.update({
            **identity.settings(),
            "REQUESTS_CA_BUNDLE": str(cert),  # trust Azurite's certificate (requests, hence azure-core)
            "AzureWebJobsStorage": azurite.connection_string,  # host storage keeps its key: only the app's is tested
            "DocumentStorage__blobServiceUri": azurite.service_url("blob"),
            "DocumentStorage__queueServiceUri": azurite.service_url("queue"),
            "DocumentStorage__tableServiceUri": azurite.service_url("table"),
            "DocumentStorage__credential": "managedidentity",
            "DocumentStorage__clientId": CLIENT_ID,
        })
        test_side = BlobServiceClient.from_connection_string(azurite.connection_string, connection_verify=str(cert))
        test_side.create_container("identity-in")
        test_side.get_blob_client("identity-in", "doc.pdf").upload_blob(b"%PDF-1.7 identity" * 100)
        host = HostProcess(app="tests.host.apps.identity_app", env=env, settings=tmp_path / "none.json").start()
        try:
            report_blob = test_side.get_blob_client("identity-out", "doc.pdf.json")
            wait_for(report_blob.exists, timeout_s=30)
            report = json.loads(report_blob.download_blob().readall())
        finally:
            host.stop()
    assert report["size"] == len(b"%PDF-1.7 identity" * 100)
    assert report["url"] == f"{azurite.service_url('blob')}/identity-in/doc.pdf"
    assert report["client_type"].startswith("azure.storage.blob")
    assert report["credential"] == "ManagedIdentityCredential"
    # Every token was asked for Storage, for the user-assigned identity named in the settings.
    assert identity.requests and all(r.get("resource", "").rstrip("/") == STORAGE_AUDIENCE and
                                     r.get("client_id") == CLIENT_ID for r in identity.requests)
