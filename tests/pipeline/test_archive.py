"""The archive worker against Azurite and the sandbox: files, metadata, sha256, call budget, repeats,
409 retries and deletion after archiving."""

from __future__ import annotations

import hashlib
import io
import json
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from azure.core.exceptions import ResourceNotFoundError

from shared.connective import NotFoundError
from shared.pipeline.archive import ArchiveOutcome, handle_archive_request
from shared.pipeline.status_sync import apply_status
from shared.storage import names
from shared.storage.blob_sink import BLOCK_BYTES, STAGING_IN_FLIGHT, BlobSink
from shared.storage.status import PackageStatus
from shared.storage.store import Store
from tests.pipeline.callback_world import (
    act,
    actors,
    calls,
    client_for,
    insert_row,
    instant_package,
    multi_document_package,
    new_ref,
    queued,
    settings_for,
    store_for,
)


@pytest.fixture()
def store(storage_connection_string: str) -> Store:
    return store_for(storage_connection_string)


def sign_everyone(sandbox, package_id: str) -> None:
    for actor in actors(sandbox, package_id):
        act(sandbox, package_id, actor["id"], "sign")


def finished_row(store, sandbox, client, ref: str, package_id: str, *, locations_known: bool = True) -> None:
    """A row brought to Finished by a status read, as a callback would (1 call).

    `locations_known`: each document's location ids on the row, as creation keeps them (from the sandbox's
    admin view: no API call).
    """
    insert_row(store, ref, package_id)
    if locations_known:
        state = sandbox.admin("GET", f"packages/{package_id}").json()
        listed = {d["id"]: [loc["id"] for loc in d["locations"]] for d in state["documents"]}
        store.packages.mutate(ref, lambda r: setattr(r, "documents", [
            {"document_id": i, "location_ids": ids} for i, ids in listed.items()]) or True)
    apply_status(store, ref, client.get_package_status(package_id), source="test")
    assert queued(store, names.ARCHIVE_REQUESTS_QUEUE, ref) == [{"packageRef": ref, "reason": "test"}]


def proof_locations(proof: bytes) -> set[str]:
    return {s.get("locationId") for s in ElementTree.fromstring(proof).iter("signature")}


def blobs(store, ref: str) -> dict[str, dict]:
    container = store.clients.container(names.SIGNED_CONTAINER)
    return {blob.name: {"metadata": blob.metadata, "type": blob.content_settings.content_type, "size": blob.size,
                        "etag": blob.etag}
            for blob in container.list_blobs(include=["metadata"]) if f"/{ref}/" in blob.name}


def read_blob(store, name: str) -> bytes:
    return store.clients.container(names.SIGNED_CONTAINER).download_blob(name).readall()


def served(client, package_id: str, document_id: str) -> str:
    sink = io.BytesIO()
    client.download_document_from_package(package_id, document_id, sink)
    return hashlib.sha256(sink.getvalue()).hexdigest()


def test_one_document_package_is_archived_within_the_call_budget(store, sandbox, storage_connection_string) -> None:
    settings = settings_for(sandbox, storage_connection_string)
    client = client_for(sandbox)
    ref = new_ref()
    package_id = instant_package(client, ref, ["ann@example.com"], document_name="Lease contract")
    sign_everyone(sandbox, package_id)
    finished_row(store, sandbox, client, ref, package_id)

    result = handle_archive_request(store, client, settings, {"packageRef": ref})

    assert result.outcome is ArchiveOutcome.ARCHIVED
    assert calls(sandbox, package_id) == 4  # instant package, status read, document, package audit proof
    row = store.packages.get(ref)
    assert row is not None and row.status is PackageStatus.ARCHIVED and row.archived_at is not None
    folder = f"{row.created_at:%Y}/{row.created_at:%m}/{ref}/"
    assert row.archive_location is not None and row.archive_location.endswith(folder)
    stored = blobs(store, ref)
    assert set(stored) == {folder + name for name in ("01-Lease contract.pdf", "01-Lease contract.audit-proof.xml",
                                                      "audit-proof.xml", "summary.json")}
    document = stored[folder + "01-Lease contract.pdf"]
    assert document["type"] == "application/pdf"
    assert document["metadata"]["packageid"] == package_id and document["metadata"]["packageref"] == ref
    document_id = row.documents[0]["document_id"]
    assert document["metadata"]["sha256"] == served(client, package_id, document_id)
    for name, entry in stored.items():
        assert entry["metadata"]["sha256"] == hashlib.sha256(read_blob(store, name)).hexdigest()
    summary = json.loads(read_blob(store, folder + "summary.json"))
    assert summary["packageId"] == package_id and summary["signers"][0]["completed_at"]
    assert {f["name"] for f in summary["files"]} == {"01-Lease contract.pdf", "01-Lease contract.audit-proof.xml",
                                                     "audit-proof.xml"}
    assert summary["files"] == row.archived_files[:3]
    proof = read_blob(store, folder + "01-Lease contract.audit-proof.xml")
    assert b"<upload>" in proof and b"<signature locationId=" in proof  # the package proof is this document's


def test_several_documents_come_from_one_zip_and_repeats_change_nothing(store, sandbox,
                                                                         storage_connection_string) -> None:
    settings = settings_for(sandbox, storage_connection_string)
    client = client_for(sandbox)
    ref = new_ref()
    package_id = multi_document_package(client, ref, ["offer", "terms", "offer"], "ann@example.com")
    sign_everyone(sandbox, package_id)
    finished_row(store, sandbox, client, ref, package_id)
    before = calls(sandbox, package_id)

    assert handle_archive_request(store, client, settings, {"packageRef": ref}).outcome is ArchiveOutcome.ARCHIVED

    assert calls(sandbox, package_id) - before == 2  # the package ZIP and the package audit proof
    row = store.packages.get(ref)
    assert row is not None and row.status is PackageStatus.ARCHIVED
    folder = f"{row.created_at:%Y}/{row.created_at:%m}/{ref}/"
    first = blobs(store, ref)
    assert sorted(name[len(folder):] for name in first) == [
        "01-offer.audit-proof.xml", "01-offer.pdf", "02-terms.audit-proof.xml", "02-terms.pdf",
        "03-offer.audit-proof.xml", "03-offer.pdf", "audit-proof.xml", "summary.json"]
    for index, document in enumerate(row.documents, start=1):
        name = f"{folder}{index:02d}-{document['name']}.pdf"
        assert first[name]["metadata"]["sha256"] == served(client, package_id, document["document_id"])
        assert first[name]["metadata"]["documentid"] == document["document_id"]
        proof = read_blob(store, f"{folder}{index:02d}-{document['name']}.audit-proof.xml")
        assert proof_locations(proof) == set(document["location_ids"])  # its own part, nothing of the others

    # A repeat of the message (at-least-once delivery) finds the row Archived: no call, no write.
    calls_after = calls(sandbox, package_id)
    again = handle_archive_request(store, client, settings, {"packageRef": ref})
    assert again.outcome is ArchiveOutcome.ALREADY_ARCHIVED and calls(sandbox, package_id) == calls_after
    assert blobs(store, ref) == first

    # A run interrupted after its uploads (the row still Finished) writes the same names and spends no call.
    store.packages.mutate(ref, lambda r: setattr(r, "status", PackageStatus.FINISHED) or True)
    assert handle_archive_request(store, client, settings, {"packageRef": ref}).outcome is ArchiveOutcome.ARCHIVED
    assert calls(sandbox, package_id) == calls_after
    assert set(blobs(store, ref)) == set(first)


def test_not_ready_at_connective_comes_back_later_and_gives_up_after_the_limit(
        store, sandbox, storage_connection_string) -> None:
    settings = settings_for(sandbox, storage_connection_string, ARCHIVE_MAX_ATTEMPTS="2")
    client = client_for(sandbox)
    ref = new_ref()
    package_id = instant_package(client, ref, ["ann@example.com"])
    insert_row(store, ref, package_id)
    apply_status(store, ref, client.get_package_status(package_id), source="test")  # Pending: documents known
    store.packages.mutate(ref, lambda r: setattr(r, "status", PackageStatus.FINISHED) or True)

    first = handle_archive_request(store, client, settings, {"packageRef": ref})

    assert first.outcome is ArchiveOutcome.NOT_READY and first.retry_after_s == 1
    row = store.packages.get(ref)
    assert row is not None and row.archive_attempts == 1 and row.status is PackageStatus.FINISHED
    message = queued(store, names.ARCHIVE_REQUESTS_QUEUE, ref, wait_s=1.2)
    assert message == [{"packageRef": ref, "reason": "not-ready"}]
    assert handle_archive_request(store, client, settings, message[0]).outcome is ArchiveOutcome.GAVE_UP
    assert queued(store, names.ARCHIVE_REQUESTS_QUEUE, ref, wait_s=2.2) == []
    assert blobs(store, ref) == {}


def test_rows_that_are_not_finished_are_dropped(store, sandbox, storage_connection_string) -> None:
    settings = settings_for(sandbox, storage_connection_string)
    ref = new_ref()
    insert_row(store, ref, "pkg", status=PackageStatus.REJECTED)
    assert handle_archive_request(store, client_for(sandbox), settings,
                                  {"packageRef": ref}).outcome is ArchiveOutcome.NOT_FINISHED
    assert handle_archive_request(store, client_for(sandbox), settings,
                                  {"packageRef": new_ref()}).outcome is ArchiveOutcome.NO_ROW


def test_delete_after_archive_removes_the_package_at_connective(store, sandbox, storage_connection_string) -> None:
    settings = settings_for(sandbox, storage_connection_string, DELETE_AFTER_ARCHIVE="true")
    client = client_for(sandbox)
    ref = new_ref()
    package_id = instant_package(client, ref, ["ann@example.com"])
    sign_everyone(sandbox, package_id)
    finished_row(store, sandbox, client, ref, package_id)

    assert handle_archive_request(store, client, settings, {"packageRef": ref}).outcome is ArchiveOutcome.ARCHIVED

    with pytest.raises(NotFoundError):
        client.get_package_status(package_id)
    row = store.packages.get(ref)
    assert row is not None and row.status is PackageStatus.ARCHIVED and row.connective_deleted_at is not None
    assert handle_archive_request(store, client, settings, {"packageRef": ref}).outcome is \
        ArchiveOutcome.ALREADY_ARCHIVED  # no second delete


@pytest.fixture
def staging() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(STAGING_IN_FLIGHT) as executor:
        yield executor


def test_a_sink_stages_blocks_in_the_background_and_commits_them_in_order(store, staging) -> None:
    container = store.clients.container(names.SIGNED_CONTAINER)
    blob = container.get_blob_client(f"sink-test/{new_ref()}.bin")
    data = b"".join(bytes([n]) * 1_000_003 for n in range(23))  # 23 MB in odd-sized writes: three blocks
    sink = BlobSink(blob, staging)
    for start in range(0, len(data), 1_000_003):
        sink.write(data[start:start + 1_000_003])
    assert sink.commit("application/octet-stream", {"kind": "test"}) == hashlib.sha256(data).hexdigest()
    assert blob.download_blob().readall() == data
    assert len(blob.get_block_list()[0]) == 3
    assert blob.get_blob_properties().metadata["sha256"] == hashlib.sha256(data).hexdigest()


def test_a_sink_fed_by_a_hashing_writer_keeps_its_digest_and_copies_reused_buffers(store, staging) -> None:
    blob = store.clients.container(names.SIGNED_CONTAINER).get_blob_client(f"sink-test/{new_ref()}.bin")
    sink = BlobSink(blob, staging, hashed_by_writer=True)
    buffer = bytearray(b"a" * BLOCK_BYTES)
    sink.write(buffer)
    buffer[:] = b"b" * BLOCK_BYTES  # the writer reuses its buffer: what was written must not change
    sink.write(memoryview(buffer)[:10])
    expected = b"a" * BLOCK_BYTES + b"b" * 10
    digest = hashlib.sha256(expected).hexdigest()
    assert sink.commit("application/octet-stream", {}, sha256=digest) == digest
    assert blob.download_blob().readall() == expected
    assert blob.get_blob_properties().metadata["sha256"] == digest


def test_a_failed_stage_is_raised_and_nothing_is_committed(store, staging) -> None:
    missing = store.clients.blob_service.get_container_client(f"gone-{new_ref()}".lower()[:60])
    sink = BlobSink(missing.get_blob_client("x.bin"), staging)
    with pytest.raises(ResourceNotFoundError):
        for _ in range(4):
            sink.write(b"x" * BLOCK_BYTES)
        sink.commit("application/octet-stream", {})


@pytest.mark.parametrize("names_", [["Überweisung \u2013 契約"], ["Überweisung \u2013 契約", "Ångström ½"]])
def test_non_ascii_document_names_are_served_and_archived(store, sandbox, storage_connection_string,
                                                         names_) -> None:
    """A raw non-ASCII Content-Disposition cannot be sent as an HTTP header; the sandbox sends the RFC 5987
    `filename*=` form beside an ASCII fallback, and the archive stores the files under safe names."""
    row = archived_package(store, sandbox, storage_connection_string, names_)
    assert [d["name"] for d in row.documents] == names_
    assert all(name.isascii() for name in blobs(store, row.ref))


def archived_package(store, sandbox, storage_connection_string, document_names: list[str]):
    """A signed package of these documents (instant for one), archived; returns its Archived row."""
    settings = settings_for(sandbox, storage_connection_string)
    client = client_for(sandbox)
    ref = new_ref()
    if len(document_names) == 1:
        package_id = instant_package(client, ref, ["ann@example.com"], document_name=document_names[0])
    else:
        package_id = multi_document_package(client, ref, document_names, "ann@example.com")
    sign_everyone(sandbox, package_id)
    finished_row(store, sandbox, client, ref, package_id)
    assert handle_archive_request(store, client, settings, {"packageRef": ref}).outcome is ArchiveOutcome.ARCHIVED
    row = store.packages.get(ref)
    assert row is not None and row.status is PackageStatus.ARCHIVED
    return row


def finished_three_documents(store, sandbox, storage_connection_string, *, locations_known: bool = True):
    """Settings, client, ref and package id of a signed three-document package whose row is Finished."""
    settings = settings_for(sandbox, storage_connection_string)
    client = client_for(sandbox)
    ref = new_ref()
    package_id = multi_document_package(client, ref, ["offer", "terms", "annex"], "ann@example.com")
    sign_everyone(sandbox, package_id)
    finished_row(store, sandbox, client, ref, package_id, locations_known=locations_known)
    return settings, client, ref, package_id


@pytest.mark.parametrize(("knobs", "locations_known", "archive_calls"), [
    ({"audit_proof_wrapper": True}, True, 2),  # a wrapper around <uploads> changes nothing
    ({}, False, 3),  # the row lacks the location ids: one Get Signing Locations call
    ({"audit_proof_uploads": "per-session"}, True, 2),  # one <upload> for all: cut by signature
    ({"audit_proof_uploads": "per-session", "audit_proof_wrapper": True}, True, 2),
], ids=["wrapper", "locations-unknown", "per-session", "per-session-wrapper"])
def test_document_proofs_are_cut_by_the_location_of_each_signature(
        store, sandbox, storage_connection_string, knobs, locations_known: bool, archive_calls: int) -> None:
    sandbox.admin("POST", "config", json=knobs)
    settings, client, ref, package_id = finished_three_documents(store, sandbox, storage_connection_string,
                                                                 locations_known=locations_known)
    before = calls(sandbox, package_id)

    assert handle_archive_request(store, client, settings, {"packageRef": ref}).outcome is ArchiveOutcome.ARCHIVED

    assert calls(sandbox, package_id) - before == archive_calls
    row = store.packages.get(ref)
    assert row is not None and row.status is PackageStatus.ARCHIVED
    state = sandbox.admin("GET", f"packages/{package_id}").json()
    own = {d["id"]: {loc["id"] for loc in d["locations"]} for d in state["documents"]}
    folder = f"{row.created_at:%Y}/{row.created_at:%m}/{ref}/"
    for index, document in enumerate(row.documents, start=1):
        proof = read_blob(store, f"{folder}{index:02d}-{document['name']}.audit-proof.xml")
        assert proof_locations(proof) == own[document["document_id"]]


def test_a_proof_part_nobody_can_be_sure_of_makes_every_document_fetch_its_own(store, sandbox,
                                                                             storage_connection_string) -> None:
    settings, client, ref, package_id = finished_three_documents(store, sandbox, storage_connection_string)
    # The row knows only two documents' locations: the third's signatures could be anyone's.
    store.packages.mutate(ref, lambda r: setattr(r, "documents", [
        {**d, "location_ids": d["location_ids"] if n < 2 else ["0" * 36]} for n, d in enumerate(r.documents)]) or True)
    before = calls(sandbox, package_id)

    assert handle_archive_request(store, client, settings, {"packageRef": ref}).outcome is ArchiveOutcome.ARCHIVED

    assert calls(sandbox, package_id) - before == 2 + 3  # ZIP, package proof, then each document's own proof
    operations = sandbox.admin("GET", "stats").json()["calls_by_operation"]
    assert operations["PackageAuditProofDoc"] == 3


def test_thirty_documents_with_long_names_are_archived(store, sandbox, storage_connection_string) -> None:
    """The row's list of archived files is longer than one Table property holds; it still fits the row."""
    long_names = [f"{index:02d} Contract annex with a name long enough to fill a table row {'x' * 40}"
                  for index in range(30)]
    row = archived_package(store, sandbox, storage_connection_string, long_names)
    assert len(row.archived_files) == 62 and len(json.dumps(row.archived_files)) > 32_768
