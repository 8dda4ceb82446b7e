"""Intake against Azurite: inputs become Received rows plus a queue message, or InputRejected with a report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from shared.pipeline import intake
from shared.pipeline.errors_report import safe_blob_path
from shared.pipeline.spec import render_json_schema
from shared.storage import names
from shared.storage.status import PackageStatus
from tests.pipeline.intake_support import (
    World,
    base_env,
    deeply_nested_pdf,
    encrypted_pdf,
    manifest,
    pdf_with_markers,
    signer,
    storage_world,
    unique,
)

__all__ = ["storage_world"]


def test_committed_schema_is_generated_from_the_model() -> None:
    with open("shared/pipeline/manifest.schema.json", encoding="utf-8") as handle:
        committed = handle.read()
    assert committed == render_json_schema(), "regenerate: python -m shared.pipeline.spec > <that file>"


def test_pdf_with_signers_in_metadata_is_recorded_and_queued(storage_world: World) -> None:
    name = f"{unique()}.pdf"
    blob = storage_world.upload(names.INBOX_CONTAINER, name, pdf_with_markers("#SIGN1#"),
                                metadata={"Signers": "Anna Peeters <anna@example.com>; Bert <bert@example.com>",
                                          "Language": "NL", "SigningType": "manual,smsotp"})
    record = intake.intake_inbox_blob(storage_world.store, storage_world.settings, blob)
    assert record is not None and record.status is PackageStatus.RECEIVED
    assert record.ref.startswith("inb-") and len(record.ref) == 24
    request = record.spec["request"]
    assert [s["email"] for s in request["signers"]] == ["anna@example.com", "bert@example.com"]
    assert [s["order"] for s in request["signers"]] == [1, 2]
    assert request["signers"][0]["signingTypes"] == ["Manual", "SmsOtp"]
    assert request["documents"][0]["language"] == "nl"
    document = record.spec["documents"][0]
    # The document's hash is taken by creation, as it sends the bytes: intake never reads them all.
    assert document["blob"] == name and document["size"] > 0 and document["sha256"] is None
    fields = record.spec["signingFields"][0]
    assert fields[0] == {"MarkerOrFieldId": "#SIGN1#", "Label": "s0-0"}  # marker found in the text
    assert fields[1]["PageNumber"] == 1 and "MarkerOrFieldId" not in fields[1]  # no #SIGN2#: coordinates
    assert record.ref in storage_world.queued_refs()


def test_folder_selects_the_routing_profile_from_the_setting(storage_connection_string: str) -> None:
    profiles = {"hr/contracts": {"signers": [{"name": "HR Lead", "email": "hr@example.com"}],
                                 "signingTypes": ["MailOtp"], "expiryDays": 10, "packageNamePrefix": "HR"}}
    world = World(base_env(storage_connection_string, ROUTING_PROFILES=json.dumps(profiles)))
    blob = world.upload(names.INBOX_CONTAINER, f"HR/Contracts/{unique()}.pdf", pdf_with_markers())
    record = intake.intake_inbox_blob(world.store, world.settings, blob)
    assert record is not None and record.status is PackageStatus.RECEIVED
    request = record.spec["request"]
    assert request["signers"][0]["email"] == "hr@example.com"
    assert request["signers"][0]["signingTypes"] == ["MailOtp"]
    assert request["expiryDays"] == 10 and request["name"].startswith("HR ")
    box = record.spec["signingFields"][0][0]
    assert box["PageNumber"] == 1 and float(box["Left"]) > 300 and float(box["Top"]) > 600  # bottom right


def test_routing_profiles_blob_and_default_profile(fresh_azurite: Any) -> None:
    world = World(base_env(fresh_azurite.connection_string))
    world.upload(names.CONFIG_CONTAINER, "routing-profiles.json",
                 json.dumps({"default": {"signers": [{"name": "Desk", "email": "desk@example.com"}]}}).encode())
    blob = world.upload(names.INBOX_CONTAINER, "root.pdf", pdf_with_markers())
    record = intake.intake_inbox_blob(world.store, world.settings, blob)
    assert record is not None and record.spec["request"]["signers"][0]["email"] == "desk@example.com"
    nested = world.upload(names.INBOX_CONTAINER, "unknown-folder/x.pdf", pdf_with_markers())
    refused = intake.intake_inbox_blob(world.store, world.settings, nested)
    assert refused is not None and refused.status is PackageStatus.INPUT_REJECTED
    assert world.report(refused)["reason"]["code"] == "signers_missing"


def test_repeated_trigger_finds_the_same_row(storage_world: World) -> None:
    blob = storage_world.upload(names.INBOX_CONTAINER, f"{unique()}.pdf", pdf_with_markers(),
                                metadata={"signers": "A <a@example.com>"})
    first = intake.intake_inbox_blob(storage_world.store, storage_world.settings, blob)
    assert first is not None
    storage_world.store.packages.mutate(first.ref, lambda r: setattr(r, "status", PackageStatus.PENDING) or True)
    second = intake.intake_inbox_blob(storage_world.store, storage_world.settings, blob)
    assert second is not None and second.ref == first.ref and second.status is PackageStatus.PENDING
    assert len(list(storage_world.store.events.history(first.ref))) == 1  # one "received", nothing more
    # A new upload of the same name is a new input (new ETag), so a new package.
    storage_world.upload(names.INBOX_CONTAINER, blob.blob_name, pdf_with_markers(),
                         metadata={"signers": "A <a@example.com>"})
    third = intake.intake_inbox_blob(storage_world.store, storage_world.settings, blob)
    assert third is not None and third.ref != first.ref


def test_manifest_with_three_documents_and_two_ordered_signers(storage_world: World) -> None:
    batch = unique("batch")
    for index in range(3):
        storage_world.upload(names.BATCHES_CONTAINER, f"{batch}/doc{index}.pdf", pdf_with_markers("#SIGN1#", "#SIGN2#"))
    body = manifest(["doc0.pdf", "doc1.pdf", "doc2.pdf"],
                    [signer("Anna", "anna@example.com", 1), signer("Bert", "bert@example.com", 2)],
                    expiryDays=5, reminders={"firstAfterHours": 24, "everyHours": 24, "maxCount": 2})
    blob = storage_world.upload(names.BATCHES_CONTAINER, f"{batch}/manifest.json", json.dumps(body).encode())
    record = intake.intake_batch_manifest(storage_world.store, storage_world.settings, blob)
    assert record is not None and record.status is PackageStatus.RECEIVED and record.ref.startswith("bat-")
    assert [d["blob"] for d in record.spec["documents"]] == [f"{batch}/doc{i}.pdf" for i in range(3)]
    assert all(fields == [{"MarkerOrFieldId": "#SIGN1#", "Label": "s0-0"},
                          {"MarkerOrFieldId": "#SIGN2#", "Label": "s1-1"}] for fields in record.spec["signingFields"])
    assert record.reminder_policy == {"firstAfterHours": 24, "everyHours": 24, "maxCount": 2}


def _expect_rejection(world: World, record: Any, code: str, source_name: str, container: str) -> dict[str, Any]:
    assert record is not None and record.status is PackageStatus.INPUT_REJECTED, record
    assert record.final_reason and record.final_reason.startswith(code), record.final_reason
    report = world.report(record)
    assert report["reason"]["code"] == code
    assert report["input"]["name"] == source_name and report["packageRef"] == record.ref
    assert world.store.clients.container(container).get_blob_client(source_name).exists()  # original stays
    kinds = [event["kind"] for event in world.store.events.history(record.ref)]
    assert kinds == ["input_rejected"]
    return report


BAD_PDFS = {
    "not_a_pdf": (b"PK\x03\x04 this is a zip, not a pdf", {}),
    "empty_document": (b"", {}),
    "pdf_corrupt": (b"%PDF-1.7\n1 0 obj << /Type /Catalog >> garbage without xref", {}),
    "pdf_encrypted": (encrypted_pdf(), {}),
    "signer_email_invalid": (pdf_with_markers(), {"signers": "Anna <not-an-email>"}),
    "signers_missing": (pdf_with_markers(), {"language": "en"}),
    "language_unsupported": (pdf_with_markers(), {"language": "xx"}),
    "signing_type_unsupported": (pdf_with_markers(), {"signingtype": "telepathy"}),
}


@pytest.mark.parametrize("code", sorted(BAD_PDFS))
def test_bad_pdf_inputs_are_rejected_with_a_report(storage_world: World, code: str) -> None:
    data, metadata = BAD_PDFS[code]
    metadata = {"signers": "Anna <anna@example.com>", **metadata} if code != "signers_missing" else metadata
    name = f"bad/{unique(code)}.pdf"
    blob = storage_world.upload(names.INBOX_CONTAINER, name, data, metadata=metadata)
    record = intake.intake_inbox_blob(storage_world.store, storage_world.settings, blob)
    _expect_rejection(storage_world, record, code, name, names.INBOX_CONTAINER)


def test_hostile_nesting_is_rejected_without_crashing(storage_world: World) -> None:
    name = f"{unique()}.pdf"
    blob = storage_world.upload(names.INBOX_CONTAINER, name, deeply_nested_pdf(),
                                metadata={"signers": "Anna <anna@example.com>"})
    record = intake.intake_inbox_blob(storage_world.store, storage_world.settings, blob)
    assert record is not None and record.status is PackageStatus.INPUT_REJECTED
    assert storage_world.report(record)["reason"]["code"] in {"pdf_too_deep", "pdf_corrupt"}


def test_document_over_the_size_limit_is_never_downloaded(storage_connection_string: str) -> None:
    world = World(base_env(storage_connection_string, INTAKE_MAX_DOCUMENT_MB="1"))
    name = f"{unique()}.pdf"
    blob = world.upload(names.INBOX_CONTAINER, name, b"%PDF-1.7\n" + b"0" * (1024 * 1024 + 10),
                        metadata={"signers": "Anna <anna@example.com>"})
    record = intake.intake_inbox_blob(world.store, world.settings, blob)
    report = _expect_rejection(world, record, "document_too_large", name, names.INBOX_CONTAINER)
    assert "limit is 1 MB" in report["reason"]["message"]


def test_odd_names_give_a_safe_report_path(storage_world: World) -> None:
    name = f"odd/{unique()} na\u00efve #1/x.pdf"
    blob = storage_world.upload(names.INBOX_CONTAINER, name, b"not a pdf", metadata={"signers": "A <a@example.com>"})
    record = intake.intake_inbox_blob(storage_world.store, storage_world.settings, blob)
    assert record is not None and record.error_report is not None
    assert "#" not in record.error_report and "\u00ef" not in record.error_report
    assert storage_world.report(record)["input"]["name"] == name


def test_safe_blob_path_never_climbs_or_keeps_control_characters() -> None:
    assert safe_blob_path("../../etc/passwd") == "etc/passwd"
    assert safe_blob_path("a/\x07b/./c") == "a/_b/c"
    assert safe_blob_path("..") == "_"


def _manifest_world_case(world: World, body: bytes, documents: dict[str, bytes] | None = None) -> tuple[Any, str]:
    batch = unique("batch")
    for path, data in (documents or {}).items():
        world.upload(names.BATCHES_CONTAINER, f"{batch}/{path}", data)
    name = f"{batch}/manifest.json"
    blob = world.upload(names.BATCHES_CONTAINER, name, body)
    return intake.intake_batch_manifest(world.store, world.settings, blob), name


def _manifest(**changes: Any) -> bytes:
    body = manifest(["a.pdf"], [signer("Anna", "anna@example.com")])
    body.update(changes)
    return json.dumps(body).encode()


BAD_MANIFESTS: dict[str, bytes] = {
    "manifest_not_json": b"{ this is not json",
    "manifest_not_utf8": b'{"name": "caf\xe9"}',
    "manifest_duplicate_key": b'{"schemaVersion": "1", "name": "a", "name": "b"}',
    "schema_invalid": _manifest(color="blue"),
    "document_missing": _manifest(documents=[{"path": "nowhere.pdf"}]),
    "document_path_invalid": _manifest(documents=[{"path": "../other-batch/a.pdf"}]),
    "signer_email_invalid": _manifest(signers=[{"name": "Anna", "email": "anna@"}]),
    "language_unsupported": _manifest(documents=[{"path": "a.pdf", "language": "tlh"}]),
    "signing_type_unsupported": _manifest(signers=[{"name": "A", "email": "a@example.com", "signingTypes": ["Quill"]}]),
    "manifest_too_deep": b"[" * 100000 + b"]" * 100000,
    "document_content_not_allowed": _manifest(documents=[{"content": "JVBERi0xLjcK"}]),
    "marker_not_found": _manifest(signers=[{"name": "A", "email": "a@example.com",
                                            "locations": [{"document": 0, "marker": "#NOPE#"}]}]),
}


@pytest.mark.parametrize("code", sorted(BAD_MANIFESTS))
def test_bad_manifests_are_rejected_with_a_report(storage_world: World, code: str) -> None:
    record, name = _manifest_world_case(storage_world, BAD_MANIFESTS[code], {"a.pdf": pdf_with_markers()})
    report = _expect_rejection(storage_world, record, code, name, names.BATCHES_CONTAINER)
    if code == "schema_invalid":
        assert report["details"][0]["path"] == "color"


def test_huge_number_in_a_manifest_is_rejected(storage_world: World) -> None:
    body = _manifest().replace(b'"order": 1', b'"order": ' + b"9" * 5000)
    record, _ = _manifest_world_case(storage_world, body, {"a.pdf": pdf_with_markers()})
    assert record is not None and record.status is PackageStatus.INPUT_REJECTED
    assert storage_world.report(record)["reason"]["code"] in {"manifest_not_json", "schema_invalid"}


def test_rejection_is_recorded_once_for_repeated_triggers(storage_world: World) -> None:
    record, name = _manifest_world_case(storage_world, b"nope")
    blob = storage_world.store.clients.container(names.BATCHES_CONTAINER).get_blob_client(name)
    again = intake.intake_batch_manifest(storage_world.store, storage_world.settings, blob)
    assert again is not None and again.error_report == record.error_report
    assert len(list(storage_world.store.events.history(record.ref))) == 1


def test_the_samples_are_accepted(storage_connection_string: str) -> None:
    samples = Path("samples")
    profiles = (samples / "config" / "routing-profiles.json").read_text(encoding="utf-8")
    world = World(base_env(storage_connection_string, ROUTING_PROFILES=profiles))
    batch = unique("demo")
    for path in sorted((samples / "batches" / "demo-batch").iterdir()):
        blob = world.upload(names.BATCHES_CONTAINER, f"{batch}/{path.name}", path.read_bytes())
    record = intake.intake_batch_manifest(world.store, world.settings, blob)  # manifest.json sorts last
    assert record is not None and record.status is PackageStatus.RECEIVED, record.final_reason
    assert len(record.spec["documents"]) == 3
    for pdf in sorted((samples / "inbox").glob("*.pdf")):
        metadata = json.loads(pdf.with_suffix(".metadata.json").read_text(encoding="utf-8"))
        blob = world.upload(names.INBOX_CONTAINER, f"{unique()}/{pdf.name}", pdf.read_bytes(), metadata=metadata)
        record = intake.intake_inbox_blob(world.store, world.settings, blob)
        assert record is not None and record.status is PackageStatus.RECEIVED, record.final_reason
    letter = (samples / "inbox" / "plain-letter.pdf").read_bytes()
    routed = world.upload(names.INBOX_CONTAINER, f"hr/{unique()}.pdf", letter)
    record = intake.intake_inbox_blob(world.store, world.settings, routed)
    assert record is not None
    assert [s["email"] for s in record.signers] == ["hr.lead@example.com", "director@example.com"]
