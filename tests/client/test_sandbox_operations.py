"""Every client method against the Connective sandbox, over HTTP."""

from __future__ import annotations

import io
import zipfile
from datetime import UTC, datetime, timedelta

import pytest

from shared.connective import (
    AuthenticationError,
    ConflictError,
    ConnectiveClient,
    ConnectiveConfig,
    NotFoundError,
    RetryConfig,
)
from shared.connective.models import (
    AddDocumentRequest,
    CreateInstantPackageRequest,
    CreatePackageRequest,
    PackageStatus,
)
from shared.connective.streaming import attachment_filename
from tests.sandbox.pdfs import make_pdf

SIGNATURE_BOX = {"page_number": 1, "left": "72", "top": "600", "width": "180", "height": "60"}


def pdf(text: str = "Contract") -> bytes:
    return make_pdf(body_text=text)


def client_for(sandbox, *, password: str | None = None, **config) -> ConnectiveClient:
    cfg = ConnectiveConfig(base_url=sandbox.base_url, username=sandbox.user,
                           password=password or sandbox.password, read_timeout_s=config.pop("read_timeout_s", 10),
                           retry=config.pop("retry", RetryConfig(max_attempts=4, total_s=10)),
                           rate_calls=config.pop("rate_calls", 10_000), **config)
    return ConnectiveClient(cfg)


def signer(email: str, **actor) -> dict:
    return {"email_address": email, "first_name": "Sam", "last_name": "Signer", "language": "en",
            "actors": [{"type": "Signer", "order_index": 1, "signing_types": [{"signing_type": "Manual"}], **actor}]}


def sign_all(sandbox, client: ConnectiveClient, package_id: str) -> None:
    for actor in client.get_package_status(package_id).actors():
        if actor.type == "Signer":
            sandbox.admin("POST", f"packages/{package_id}/actors/{actor.actor_id}/sign")


def test_the_multi_step_flow_and_every_read_and_download(sandbox):
    client = client_for(sandbox, multipart_threshold_bytes=4096)
    created = client.create_package(CreatePackageRequest(
        initiator="owner@example.com", package_name="Contracts", external_package_reference="ref-flow",
        correlation_id="corr-package", expiry_timestamp=datetime.now(UTC) + timedelta(days=3)))
    package_id = created.package_id
    first = client.add_document_to_package(package_id, AddDocumentRequest(
        document_name="contract", document_language="en", external_document_reference="DOC-1",
        correlation_id="corr-doc", signing_fields=[{**SIGNATURE_BOX, "label": "SIG01"}]), pdf("one"))
    assert [location.label for location in first.locations] == ["SIG01"]
    big = pdf("two") + b"%" + b"x" * 8000 + b"\n"  # over the threshold: sent as multipart
    second = client.add_document_to_package(package_id, {"document_name": "annex", "signing_fields": [SIGNATURE_BOX]},
                                            io.BytesIO(big))
    locations = client.get_signing_locations(package_id)
    assert {doc.document_id for doc in locations.documents} == {first.document_id, second.document_id}
    client.delete_document(package_id, second.document_id)
    assert [doc.document_id for doc in client.get_signing_locations(package_id).documents] == [first.document_id]

    client.set_process_information(package_id, {"stakeholders": [
        signer("signer@example.com", location_ids=[first.locations[0].id]),
        {"email_address": "copy@example.com", "actors": [{"type": "Receiver", "order_index": 2}]},
    ]})
    pending = client.set_package_status(package_id, "Pending")
    assert pending.package_status is PackageStatus.PENDING
    assert pending.actors()[0].action_url
    status = client.get_package_status(package_id)
    assert status.external_package_reference == "ref-flow"
    assert status.package_documents[0].document_id == first.document_id

    client.send_package_reminders(package_id)
    new_expiry = datetime.now(UTC) + timedelta(days=10)
    client.expiry_time_stamp(package_id, new_expiry)
    assert abs((client.get_package_status(package_id).expiry_timestamp - new_expiry).total_seconds()) < 2

    with pytest.raises(ConflictError):
        client.download_package(package_id, io.BytesIO())
    client.proof_external_source(package_id, {"location_id": first.locations[0].id, "name": "Identity check",
                                              "type": "kyc", "description": "checked", "content": "ok",
                                              "ip_address": "192.0.2.1"})
    sign_all(sandbox, client, package_id)
    assert client.get_package_status(package_id).package_status is PackageStatus.FINISHED

    archive = io.BytesIO()
    result = client.download_package(package_id, archive)
    assert result.bytes_written == len(archive.getvalue()) > 0
    assert zipfile.ZipFile(archive).namelist()
    document = io.BytesIO()
    client.download_document_from_package(package_id, first.document_id, document)
    assert document.getvalue().startswith(b"%PDF")
    for proof in (client.package_audit_proof(package_id), client.package_audit_proof_doc(package_id, first.document_id),
                  client.package_correlation_audit_proof("corr-package"),
                  client.document_correlation_audit_proof("corr-doc")):
        with proof:
            body = b"".join(proof)
        assert b"<uploads" in body and package_id.encode() in body
    with client.package_audit_proof(package_id) as proof:
        assert b"Identity check" in b"".join(proof)

    listed = list(client.iter_package_list(page_size=1))
    assert [item.id for item in listed] == [package_id]
    assert client.package_list(status="finished").items[0].id == package_id
    assert [p.id for p in client.find_packages_by_external_reference("ref-flow")] == [package_id]

    client.delete_package(package_id)
    with pytest.raises(NotFoundError):
        client.get_package_status(package_id)


@pytest.mark.parametrize("threshold", [10 * 1024 * 1024, 1], ids=["base64-json", "multipart"])
def test_instant_package_skip_signers_and_revoke(sandbox, threshold):
    client = client_for(sandbox, multipart_threshold_bytes=threshold)
    request = CreateInstantPackageRequest(
        initiator="owner@example.com", document_name="instant", document_language="en",
        external_package_reference="ref-instant",
        stakeholders=[signer("a@example.com", signing_fields=[{**SIGNATURE_BOX, "label": "A"}]),
                      signer("b@example.com", signing_fields=[{**SIGNATURE_BOX, "top": "700", "label": "B"}])])
    instant = client.create_instant_package(request, pdf("instant"))
    assert instant.package_status is PackageStatus.PENDING
    assert {loc.label for loc in instant.package_documents[0].locations} == {"A", "B"}
    first_actor = instant.actors()[0]
    sandbox.admin("POST", f"packages/{instant.package_id}/actors/{first_actor.actor_id}/sign")
    client.skip_signers(instant.package_id)
    assert client.get_package_status(instant.package_id).package_status is PackageStatus.FINISHED

    other = client.create_instant_package(request.model_copy(update={"external_package_reference": "ref-2"}),
                                          pdf("other"))
    revoked = client.set_package_status(other.package_id, PackageStatus.REVOKED)
    assert revoked.package_status is PackageStatus.REVOKED


def test_process_v31_with_a_person_group_and_an_approver(sandbox):
    client = client_for(sandbox)
    package_id = client.create_package({"initiator": "owner@example.com", "package_name": "v31"}).package_id
    location = client.add_document_to_package(package_id, {"document_name": "d", "signing_fields": [SIGNATURE_BOX]},
                                              pdf()).locations[0]
    client.set_process_information_v31(package_id, {"stakeholders": [
        {"type": "Person", "email_address": "approver@example.com", "first_name": "A", "last_name": "P",
         "language": "en", "actors": [{"type": "Approver", "order_index": 1}]},
        {"type": "PersonGroup", "person_group_name": "Board",
         "persons": [{"email_address": "x@example.com", "first_name": "X", "last_name": "Y", "language": "en"},
                     {"email_address": "z@example.com", "first_name": "Z", "last_name": "W", "language": "en"}],
         "actors": [{"type": "Signer", "order_index": 2, "locations": [{"id": location.id}],
                     "signing_types": [{"signing_type": "Manual"}]}]},
    ]})
    status = client.set_package_status(package_id, "Pending")
    group = next(s for s in status.stakeholders if s.type == "PersonGroup")
    assert group.person_group_name == "Board"
    assert {url.email_address for url in group.actors[0].action_urls} == {"x@example.com", "z@example.com"}


def test_errors_from_the_sandbox(sandbox):
    client = client_for(sandbox)
    with pytest.raises(NotFoundError) as not_found:
        client.get_package_status("00000000-0000-0000-0000-000000000000")
    assert not_found.value.error_code
    with pytest.raises(AuthenticationError) as denied:
        client_for(sandbox, password="wrong-password").get_package_status("x")
    assert denied.value.status == 401
    sandbox.admin("POST", "config", json={"error_format": "array"})
    with pytest.raises(NotFoundError) as in_array:
        client.delete_package("00000000-0000-0000-0000-000000000000")
    assert in_array.value.error_code and in_array.value.message


def test_downloads_name_their_file_in_either_content_disposition_form():
    assert attachment_filename('attachment; filename="Lease.pdf"') == "Lease.pdf"
    assert attachment_filename("attachment; filename=\"_berweisung.pdf\"; "
                               "filename*=UTF-8''%C3%9Cberweisung%20%E2%80%93%20%E5%A5%91%E7%B4%84.pdf"
                               ) == "Überweisung \u2013 契約.pdf"
    assert attachment_filename("attachment; filename*=UTF-8''%C3%85ngstr%C3%B6m.zip") == "Ångström.zip"
    assert attachment_filename(None) is None and attachment_filename("inline") is None
