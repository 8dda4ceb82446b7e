"""Every operation of the connector swagger is answered at the swagger's path with a documented success code,
and its response validates against the swagger's response schema (jsonschema).

Two adaptations, both from the wire reference: optional values are serialised as null (§6), which Swagger 2
cannot express, so typed properties also accept null; and audit proofs are XML, so they are mapped onto
the swagger's `Content` structure (arrays, attributes) before validation.
"""

from __future__ import annotations

import copy
import json
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.sandbox.conftest import Api, actor_ids, b64, coordinates, person, signable_pdf

# The official Power Platform connector's API definition (microsoft/PowerPlatformConnectors,
# certified-connectors/Connective eSignatures/apiDefinition.swagger.json), kept with the tests so the
# contract check always runs.
SWAGGER_PATH = Path(__file__).resolve().parent / "data" / "connective-connector.swagger.json"


@pytest.fixture(scope="module")
def swagger() -> dict[str, Any]:
    return json.loads(SWAGGER_PATH.read_text())


def nullable(schema: Any) -> Any:
    if isinstance(schema, dict):
        result = {key: nullable(value) for key, value in schema.items() if key != "example"}
        if isinstance(result.get("type"), str):
            result["type"] = [result["type"], "null"]
        return result
    if isinstance(schema, list):
        return [nullable(item) for item in schema]
    return schema


def audit_proof_as_content(xml: bytes) -> dict[str, Any]:
    """Map the audit-proof XML onto the swagger's Content definition."""
    root = ElementTree.fromstring(xml)
    uploads = []
    for uploads_element in root.findall("uploads"):
        uploads.append({
            "packageId": uploads_element.get("packageId"),
            "packageCorrelationId": uploads_element.get("packageCorrelationId"),
            "upload": [{
                "start": upload.findtext("start"), "end": upload.findtext("end"),
                "signatures": [{
                    "locationId": signature.get("locationId"),
                    "proofs": [{"proof": {"name": proof.findtext("name"), "type": proof.findtext("type"),
                                          "index": proof.findtext("index") == "true",
                                          "ipAddress": proof.get("ipAddress")}}
                               for proof in signature.findall("proofs/proof")],
                } for signature in upload.findall("signatures/signature")],
            } for upload in uploads_element.findall("upload")],
            "indexes": [{"index": {"identifier": index.findtext("identifier") == "true",
                                   "content": index.findtext("content")}}
                        for index in uploads_element.findall("indexes/index")],
        })
    return {"uploads": uploads}


def test_every_swagger_operation_answers_and_validates(api: Api, swagger: dict[str, Any]) -> None:
    finished = api.finished_package(CorrelationId="swagger-corr")
    finished_id = finished["PackageId"]
    finished_doc = finished["PackageDocuments"][0]["DocumentId"]
    location_id = finished["Stakeholders"][0]["Actors"][0]["Locations"][0]["Id"]
    api.create()  # one more package for the list
    doc_corr_package = api.create()
    doc_location = api.add_document(doc_corr_package, CorrelationId="doc-corr", SigningFields=[coordinates()])
    api.call("PUT", f"/packages/{doc_corr_package}/process",
             json={"Stakeholders": [person("d@example.com", [doc_location["Locations"][0]["Id"]])]})
    api.call("PUT", f"/packages/{doc_corr_package}/status", json={"Status": "Pending"})
    for actor_id in actor_ids(api.status(doc_corr_package)):
        api.act(doc_corr_package, actor_id, "sign")
    draft = api.create()
    pending = api.pending_package(signers=["p@example.com", "q@example.com"])
    api.act(pending["PackageId"], actor_ids(pending)[0], "sign")
    deletable = api.create()
    draft_location: dict[str, str] = {}

    def add_document() -> dict[str, Any]:
        return {"DocumentName": "swagger", "Document": b64(signable_pdf()), "SigningFields": [coordinates()]}

    def process() -> dict[str, Any]:
        return {"Stakeholders": [person("s@example.com", [draft_location["id"]])]}

    plan: dict[str, tuple[dict[str, str], Any]] = {
        "CreateInstantPackage": ({}, lambda: {
            "Document": b64(signable_pdf()), "DocumentName": "instant", "Initiator": "i@example.com",
            "Stakeholders": [{"EmailAddress": "s@example.com", "Actors": [
                {"Type": "Signer", "SigningFields": [coordinates()]}]}]}),
        "PackageList": ({}, None),
        "CreatePackage": ({}, lambda: {"PackageName": "swagger", "Initiator": "i@example.com"}),
        "AddDocumentToPackage": ({"PackageId": draft}, add_document),
        "GetSigningLocations": ({"Id": draft}, None),
        "SetProcessInformation": ({"id": draft}, process),
        "SetPackageStatus": ({"Id": draft}, lambda: {"Status": "Pending"}),
        "GetPackageStatus": ({"Id": draft}, None),
        "SkipSigners": ({"PackageId": pending["PackageId"]}, None),
        "DownloadPackage": ({"id": finished_id}, None),
        "DownloadDocumentFromPackage": ({"id": finished_id, "documentId": finished_doc}, None),
        "ExpiryTimeStamp": ({"id": draft}, lambda: {"ExpiryTimestamp": "2099-01-01T00:00:00Z"}),
        "SendPackageReminders": ({"PackageId": draft}, None),
        "DeletePackage": ({"id": deletable}, None),
        "PackageAuditProof": ({"packageId": finished_id}, None),
        "PackageAuditProofDoc": ({"packageId": finished_id, "documentId": finished_doc}, None),
        "PackageCorrelationAuditProof": ({"correlationId": "swagger-corr"}, None),
        "DocumentCorrelationAuditProof": ({"correlationId": "doc-corr"}, None),
        "ProofExternalSource": ({"packageId": finished_id}, lambda: {
            "LocationId": location_id, "Name": "n", "Type": "t", "Content": "c", "IpAddress": "1.2.3.4"}),
    }
    operations = {operation["operationId"]: (method.upper(), path, operation)
                  for path, methods in swagger["paths"].items() for method, operation in methods.items()}
    assert set(operations) == set(plan), "the plan must cover exactly the swagger's operations"
    # Dependencies first: documents and process before the status change, reminders after it.
    order = ["CreateInstantPackage", "PackageList", "CreatePackage", "AddDocumentToPackage", "GetSigningLocations",
             "SetProcessInformation", "ExpiryTimeStamp", "SetPackageStatus", "GetPackageStatus",
             "SendPackageReminders", "SkipSigners", "DownloadPackage", "DownloadDocumentFromPackage", "DeletePackage",
             "ProofExternalSource", "PackageAuditProof", "PackageAuditProofDoc", "PackageCorrelationAuditProof",
             "DocumentCorrelationAuditProof"]
    for operation_id in order:
        method, template, operation = operations[operation_id]
        params, body_factory = plan[operation_id]
        path = template
        for name, value in params.items():
            assert "{" + name + "}" in path, (operation_id, name)
            path = path.replace("{" + name + "}", value)
        response = api.call(method, path, json=body_factory() if body_factory else None)
        success = sorted(code for code in operation["responses"] if code.startswith("2"))
        assert str(response.status_code) in success, (operation_id, response.status_code, response.text[:300])
        if operation_id == "AddDocumentToPackage":
            draft_location["id"] = response.json()["Locations"][0]["Id"]
        schema = operation["responses"][str(response.status_code)].get("schema")
        if schema is None:
            continue
        if schema.get("format") == "binary":
            assert response.content and not response.headers["Content-Type"].startswith("application/json")
            continue
        if operation_id.endswith(("AuditProof", "AuditProofDoc")):
            assert response.headers["Content-Type"].startswith("application/xml")
            instance = audit_proof_as_content(response.content)
        else:
            instance = response.json()
        full_schema = nullable({**copy.deepcopy(schema), "definitions": swagger["definitions"]})
        jsonschema.validate(instance, full_schema)


def test_nullable_adaptation_still_rejects_wrong_types(swagger: dict[str, Any]) -> None:
    schema = nullable({"$ref": "#/definitions/PackageStatus", "definitions": swagger["definitions"]})
    jsonschema.validate({"PackageName": None, "Stakeholders": []}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"PackageName": 5}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"Stakeholders": [{"Actors": [{"ActorId": 7}]}]}, schema)
