"""The sandbox's audit proofs hold to the swagger's `Content` definition, in each layout the knobs play."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.sandbox.conftest import Api, actor_ids, b64, coordinates, person, signable_pdf
from tests.sandbox.proof_shape import INFERRED, LEAVES, SHAPE, shape_errors, uploads_of

SWAGGER = Path(__file__).parent / "data" / "connective-connector.swagger.json"


def _content_names(schema: dict[str, Any], found: dict[str, bool]) -> None:
    """Every property name under `Content`, with whether it is an XML attribute."""
    for name, sub in (schema.get("properties") or {}).items():
        found[name] = bool((sub.get("xml") or {}).get("attribute"))
        _content_names(sub, found)
    if "items" in schema:
        _content_names(schema["items"], found)


def test_the_shape_the_tests_hold_to_is_the_swaggers_content_definition() -> None:
    content: dict[str, bool] = {}
    _content_names(json.loads(SWAGGER.read_text())["definitions"]["Content"], content)
    elements = (set(SHAPE) | LEAVES | {c for children, _ in SHAPE.values() for c in children}) - INFERRED
    attributes = {a for _, names in SHAPE.values() for a in names}
    assert elements == {name for name, is_attribute in content.items() if not is_attribute}
    assert attributes == {name for name, is_attribute in content.items() if is_attribute}


def _finished_two_document_package(api: Api) -> tuple[str, dict[str, set[str]]]:
    package_id = api.create()
    locations: dict[str, set[str]] = {}
    for name in ("first", "second"):
        added = api.call("POST", f"/packages/{package_id}/documents", json={
            "DocumentName": name, "Document": b64(signable_pdf()), "SigningFields": [coordinates()]}).json()
        locations[added["DocumentId"]] = {location["Id"] for location in added["Locations"]}
    ids = [location for found in locations.values() for location in found]
    holder = person("ann@example.com", ids)
    assert api.call("PUT", f"/packages/{package_id}/process", json={"Stakeholders": [holder]}).status_code == 200
    package = api.call("PUT", f"/packages/{package_id}/status", json={"Status": "Pending"}).json()
    for actor_id in actor_ids(package):
        api.act(package_id, actor_id, "sign")
    return package_id, locations


@pytest.mark.parametrize(("wrapper", "uploads_per"), [(False, "per-document"), (True, "per-document"),
                                                      (False, "per-session"), (True, "per-session")])
def test_each_layout_keeps_to_the_shape(api: Api, wrapper: bool, uploads_per: str) -> None:
    api.config(audit_proof_wrapper=wrapper, audit_proof_uploads=uploads_per)
    package_id, locations = _finished_two_document_package(api)
    proof = api.call("GET", f"/packages/{package_id}/auditproof/download").content
    [uploads] = uploads_of(proof)
    assert shape_errors(uploads) == []
    upload_locations = [{s.get("locationId") for s in upload.iter("signature")} for upload in uploads.findall("upload")]
    if uploads_per == "per-document":
        assert sorted(map(sorted, upload_locations)) == sorted(map(sorted, locations.values()))
    else:
        assert upload_locations == [set().union(*locations.values())]  # one upload: no document can be told apart
    for document_id, own in locations.items():
        [document_uploads] = uploads_of(api.call("GET", f"/packages/{package_id}/auditproof/download/{document_id}")
                                        .content)
        assert {s.get("locationId") for s in document_uploads.iter("signature")} == own
