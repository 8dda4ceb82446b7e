"""Blob to Connective and back (real Azurite, real sandbox), and the client built from app settings."""

from __future__ import annotations

import hashlib
import uuid

import pytest
from azure.storage.blob import BlobServiceClient

from shared.config import Settings
from shared.connection import connective_client
from shared.connective.blob import blob_document, download_to_blob
from shared.logging import redact_text
from tests.sandbox.pdfs import make_pdf


def pdf_with_padding(size: int) -> bytes:
    return make_pdf(body_text="blob document") + b"%" + b"p" * size + b"\n"


def settings_for(sandbox, **extra: str) -> Settings:
    return Settings({"CONNECTIVE_BASE_URL": sandbox.base_url, "CONNECTIVE_USERNAME": sandbox.user,
                     "CONNECTIVE_PASSWORD": sandbox.password, "CONNECTIVE_RATE_CALLS": "1000",
                     "CONNECTIVE_MULTIPART_THRESHOLD_KB": "16", **extra})


def test_a_document_goes_from_a_blob_to_connective_and_the_signed_one_back_to_a_blob(
        sandbox, storage_connection_string):
    service = BlobServiceClient.from_connection_string(storage_connection_string)
    container = service.create_container(f"client-{uuid.uuid4().hex[:12]}")
    source = container.get_blob_client("inbox/contract.pdf")
    document = pdf_with_padding(300_000)
    source.upload_blob(document)

    client = connective_client(settings_for(sandbox))
    package_id = client.create_package({"initiator": "owner@example.com", "package_name": "blob"}).package_id
    opener, length = blob_document(source)
    assert length == len(document)
    added = client.add_document_to_package(package_id, {"document_name": "contract", "signing_fields": [
        {"page_number": 1, "left": "72", "top": "600", "width": "150", "height": "50"}]}, opener,
        document_length=length)
    client.set_process_information(package_id, {"stakeholders": [{
        "email_address": "s@example.com", "first_name": "S", "last_name": "L", "language": "en",
        "actors": [{"type": "Signer", "order_index": 1, "location_ids": [added.locations[0].id]}]}]})
    actor = client.set_package_status(package_id, "Pending").actors()[0]
    sandbox.admin("POST", f"packages/{package_id}/actors/{actor.actor_id}/sign")

    target = container.get_blob_client(f"signed/{package_id}/contract.pdf")
    result = download_to_blob(client.download_document_from_package(package_id, added.document_id), target)
    stored = target.download_blob().readall()
    assert result.bytes_written == len(stored) and result.sha256 == hashlib.sha256(stored).hexdigest()
    assert stored.startswith(document[:1000])  # the signature stamp is appended to the original
    assert target.get_blob_properties().content_settings.content_type == "application/pdf"


def test_from_settings_shares_the_session_and_limiter_and_registers_the_password(sandbox):
    first = connective_client(settings_for(sandbox))
    second = connective_client(settings_for(sandbox))
    assert first.session is second.session and first.limiter is second.limiter
    assert first.rate_wait_s == 120.0
    assert first.with_rate_wait(2).rate_wait_s == 2
    assert sandbox.password not in redact_text(f"password is {sandbox.password}")
    assert first.package_list().items == []
    other_user = connective_client(settings_for(sandbox, CONNECTIVE_USERNAME="someone-else"))
    assert other_user.limiter is not first.limiter


def test_a_missing_password_is_a_clear_error():
    with pytest.raises(Exception, match="CONNECTIVE_PASSWORD"):
        connective_client(Settings({"CONNECTIVE_USERNAME": "u"}))
