"""Every key the client sends is spelt exactly as the connector's swagger spells it, operation by operation.

The sandbox (like Connective's .NET server, probably) accepts any casing, so only this test sees a
misspelling: each request body the client builds (every field of every request model filled in, and
the bodies creation really builds) is compared key by key, case-sensitively, with the swagger's
schema of that operation's body. The swagger is the copy kept with the tests (tests/sandbox/data).
"""

from __future__ import annotations

import enum
import json
import types
import typing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from shared.connective import models
from tests.client.fakes import make_client
from tests.client.test_bodies_and_logs import ADDED, PACKAGE_ID, multipart_parts

SWAGGER = json.loads((Path(__file__).parents[1] / "sandbox" / "data" / "connective-connector.swagger.json")
                     .read_text())
# Keys the swagger leaves out but other public sources document; each with where it is documented.
DOCUMENTED_ELSEWHERE = {
    "SigningFields[].Label": "the swagger's own SigningField example uses it; echoed back in Locations",
    "SigningTypes[].MatchLevel": "node-connective 1.x: needed with MandatedSignerValidation NameAndBirthDate",
}


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = SWAGGER["definitions"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def body_schema(operation_id: str) -> dict[str, Any]:
    for path_item in SWAGGER["paths"].values():
        for operation in path_item.values():
            if isinstance(operation, dict) and operation.get("operationId") == operation_id:
                return next(_resolve(p["schema"]) for p in operation["parameters"] if p.get("in") == "body")
    raise KeyError(operation_id)


def misspelt(body: Any, schema: dict[str, Any], path: str = "") -> list[str]:
    """Paths of keys in `body` that `schema` does not have, compared case-sensitively."""
    schema = _resolve(schema)
    if isinstance(body, list):
        return [error for item in body for error in misspelt(item, schema.get("items") or {}, path + "[]")]
    if not isinstance(body, dict):
        return []
    properties = schema.get("properties") or {}
    errors = []
    for key, value in body.items():
        where = f"{path}.{key}" if path else key
        if key in properties:
            errors.extend(misspelt(value, properties[key], where))
        elif not any(where.endswith(allowed) for allowed in DOCUMENTED_ELSEWHERE):
            errors.append(where)
    return errors


def _sample(annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return _sample(next(arg for arg in typing.get_args(annotation) if arg is not type(None)))
    if origin is list:
        return [_sample(typing.get_args(annotation)[0])]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return filled(annotation)
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return next(iter(annotation))
    return {bool: True, int: 1, str: "x", datetime: datetime(2030, 1, 1, tzinfo=UTC)}.get(annotation, "x")


def filled(model: type[BaseModel]) -> BaseModel:
    """An instance with every field set: whatever the client can send, it sends here."""
    return model.model_validate({name: _sample(field.annotation) for name, field in model.model_fields.items()})


def _json(sent) -> Any:  # type: ignore[no-untyped-def]
    if sent.headers.get("Content-Type", "").startswith("multipart/"):
        return json.loads(multipart_parts(sent)["Data"][1])
    return json.loads(sent.body)


CREATED = {"PackageId": PACKAGE_ID, "CreationTimestamp": "2020-08-21T09:04:34Z"}
STATUS = {"PackageStatus": "Pending", "PackageId": PACKAGE_ID}


def _every_operation(client, package: dict[str, BaseModel]) -> None:  # type: ignore[no-untyped-def]
    client.create_package(package["CreatePackage"])
    client.create_instant_package(package["CreateInstantPackage"], b"%PDF-1.4 instant")
    client.add_document_to_package(PACKAGE_ID, package["AddDocumentToPackage"], b"%PDF-1.4 added")
    client.set_process_information(PACKAGE_ID, package["SetProcessInformation"])
    client.set_package_status(PACKAGE_ID, "Pending")
    client.expiry_time_stamp(PACKAGE_ID, datetime(2030, 1, 1, tzinfo=UTC))
    client.proof_external_source(PACKAGE_ID, package["ProofExternalSource"])


OPERATIONS = ("CreatePackage", "CreateInstantPackage", "AddDocumentToPackage", "SetProcessInformation",
              "SetPackageStatus", "ExpiryTimeStamp", "ProofExternalSource")
REQUEST_MODELS = {"CreatePackage": models.CreatePackageRequest,
                  "CreateInstantPackage": models.CreateInstantPackageRequest,
                  "AddDocumentToPackage": models.AddDocumentRequest,
                  "SetProcessInformation": models.SetProcessRequest,
                  "ProofExternalSource": models.ExternalProofRequest}


@pytest.mark.parametrize("multipart", [False, True], ids=["json", "multipart"])
def test_every_field_the_client_can_send_is_spelt_as_the_swagger_spells_it(multipart: bool) -> None:
    harness = make_client(multipart_threshold_bytes=1 if multipart else 10 * 1024 * 1024)
    harness.adapter.script((201, CREATED), (200, STATUS), (200, ADDED), (200, None), (200, STATUS), (200, None),
                           (204, None))
    _every_operation(harness.client, {name: filled(model) for name, model in REQUEST_MODELS.items()})
    assert len(harness.adapter.sent) == len(OPERATIONS)
    errors = {operation: misspelt(_json(sent), body_schema(operation))
              for operation, sent in zip(OPERATIONS, harness.adapter.sent, strict=True)}
    assert errors == {operation: [] for operation in OPERATIONS}


def test_set_process_information_sends_the_operations_own_spellings() -> None:
    harness = make_client()
    harness.adapter.script((200, None))
    harness.client.set_process_information(PACKAGE_ID, {"Stakeholders": [{"EmailAddress": "a@example.com", "Actors": [
        {"Type": "Signer", "LocationIds": ["l1"], "RedirectUrl": "https://r.example", "LegalNoticeText": "t"}]}]})
    actor = json.loads(harness.adapter.sent[0].body)["Stakeholders"][0]["Actors"][0]
    assert actor["RedirectURL"] == "https://r.example" and actor["LegalNoticetext"] == "t"
    assert "RedirectUrl" not in actor and "LegalNoticeText" not in actor


def test_the_checker_finds_a_key_in_the_wrong_case() -> None:
    schema = body_schema("SetProcessInformation")
    wrong = {"Stakeholders": [{"EmailAddress": "a@example.com", "Actors": [{"RedirectUrl": "x", "LegalNoticeText": "y",
                                                                          "LocationIds": ["l"]}]}]}
    assert misspelt(wrong, schema) == ["Stakeholders[].Actors[].RedirectUrl", "Stakeholders[].Actors[].LegalNoticeText"]


def _plan(documents: int, signing_types: list[str]):  # type: ignore[no-untyped-def]
    from shared.config import Settings
    from shared.pipeline.creation import _Plan
    from shared.pipeline.spec import PackageRequest
    from shared.storage.packages import PackageRecord

    request = PackageRequest.model_validate({
        "schemaVersion": "1", "name": "Spelling", "initiator": "owner@example.com", "correlationId": "corr",
        "documentGroupCode": "00001", "expiryDays": 5,
        "documents": [{"path": f"d{n}.pdf"} for n in range(documents)],
        "signers": [{"name": "Ann Smith", "email": "ann@example.com", "phone": "+32477123456",
                     "signingTypes": signing_types, "externalReference": "ann-1"},
                    {"name": "Rita Receiver", "email": "rita@example.com", "type": "Receiver"}]})
    stored = [{"container": "c", "blob": f"d{n}.pdf", "etag": "e", "size": 10, "sha256": "0" * 64, "name": f"d{n}",
               "language": "en", "pages": 1, "last_page_size": [595, 842]} for n in range(documents)]
    fields = [[{"PageNumber": 1, "Left": "1", "Top": "1", "Width": "100", "Height": "40", "Label": "s0-1"}]
              for _ in range(documents)]
    record = PackageRecord(ref="inb-spelling", source="inbox", source_uri="x",
                           spec={"request": request.to_json_dict(), "documents": stored, "signingFields": fields})
    settings = Settings({"CALLBACK_SECRETS": "s", "PUBLIC_BASE_URL": "https://fn.example.com"})
    return _Plan(None, settings, record)  # type: ignore[arg-type]  # no store: no document is read here


@pytest.mark.parametrize("signing_types", [["Manual"], ["Itsme", "SmsOtp"]])
def test_the_bodies_creation_builds_are_spelt_as_the_swagger_spells_them(signing_types: list[str]) -> None:
    single, multi = _plan(1, signing_types), _plan(2, signing_types)
    harness = make_client()
    harness.adapter.script((200, STATUS), (201, CREATED), (200, ADDED), (200, None))
    harness.client.create_instant_package(single.instant_request(), b"%PDF-1.4 one")
    harness.client.create_package(multi.package_fields())
    harness.client.add_document_to_package(PACKAGE_ID, multi.add_document_request(1), b"%PDF-1.4 two")
    harness.client.set_process_information(PACKAGE_ID, {"Stakeholders": multi.stakeholders({"0:s0-1": "l1"})})
    sent = [_json(item) for item in harness.adapter.sent]
    for operation, body in zip(("CreateInstantPackage", "CreatePackage", "AddDocumentToPackage",
                                "SetProcessInformation"), sent, strict=True):
        assert misspelt(body, body_schema(operation)) == [], operation
    if "Itsme" in signing_types:  # itsme signs PDF/A only
        assert sent[0]["TargetType"] == "PdfA2A" and sent[2]["TargetType"] == "PdfA2A"
    else:
        assert "TargetType" not in sent[0] and "TargetType" not in sent[2]
