"""Every operation's success and error paths, over HTTP."""

from __future__ import annotations

import io
import zipfile
from datetime import datetime, timedelta

import requests
from pypdf import PdfReader

from tests.sandbox.conftest import Api, actor_ids, b64, coordinates, person, signable_pdf
from tests.sandbox.pdfs import make_pdf


def error_code(response: requests.Response) -> str:
    body = response.json()
    return body[0]["ErrorCode"] if isinstance(body, list) else body["ErrorCode"]


# ----- auth and routing ---------------------------------------------------------------------------

def test_wrong_or_missing_credentials_get_401(api: Api) -> None:
    url = f"{api.base}/packages"
    assert requests.get(url, timeout=5).status_code == 401
    response = requests.get(url, auth=("tester", "wrong"), timeout=5)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic")
    assert error_code(response) == "Authentication.Failed"


def test_route_parameters_and_paths_match_case_insensitively(api: Api) -> None:
    package_id = api.create()
    response = api.session.get(f"{api.handle.root_url}/WebPortalApi/V3/Packages/{package_id.upper()}/STATUS", timeout=5)
    assert response.status_code == 200
    assert response.json()["PackageStatus"] == "Draft"


def test_unknown_route_is_404_and_wrong_method_405(api: Api) -> None:
    assert api.call("GET", "/nothing-here").status_code == 404
    assert api.call("PATCH", "/packages").status_code in (405, 501)
    assert api.call("PUT", "/packages/instant").status_code == 405


# ----- create package -----------------------------------------------------------------------------

def test_create_package_answers_201_with_id_and_timestamp(api: Api) -> None:
    response = api.call("POST", "/packages", json={"packagename": "Lower case keys", "initiator": "a@example.com",
                                                    "ExternalPackageReference": "REF-1"})
    assert response.status_code == 201
    body = response.json()
    assert len(body["PackageId"]) == 36 and body["PackageId"] == body["PackageId"].lower()
    assert body["CreationTimestamp"].endswith("Z")  # as a real captured answer has it
    status = api.status(body["PackageId"])
    assert status["PackageName"] == "Lower case keys"
    assert status["ExternalPackageReference"] == "REF-1"
    assert status["PackageStatus"] == "Draft"
    assert status["ExpiryTimestamp"] is None


def test_create_package_rejects_missing_and_invalid_fields(api: Api) -> None:
    cases = [
        ({"Initiator": "a@example.com"}, "Package.PackageName.Required"),
        ({"PackageName": "x"}, "Package.Initiator.Required"),
        ({"PackageName": "a/b", "Initiator": "a@example.com"}, "Package.PackageName.Invalid"),
        ({"PackageName": "x", "Initiator": "not-an-email"}, "Package.Initiator.Invalid"),
        ({"PackageName": "x", "Initiator": "a@example.com", "ExpiryTimestamp": "tomorrow"},
         "Package.ExpiryTimestamp.Invalid"),
        ({"PackageName": "x", "Initiator": "a@example.com", "ExpiryTimestamp": "2001-01-01T00:00:00Z"},
         "Package.ExpiryTimestamp.Invalid"),
        ({"PackageName": "x", "Initiator": "a@example.com", "CallBackUrl": "relative/path"},
         "Package.CallBackUrl.Invalid"),
    ]
    for body, code in cases:
        response = api.call("POST", "/packages", json=body)
        assert response.status_code == 400, body
        assert error_code(response) == code
        assert response.json()["Message"]
    response = api.call("POST", "/packages", data=b"{not json", headers={"Content-Type": "application/json"})
    assert response.status_code == 400


def test_correlation_id_needs_audit_proofs(api: Api) -> None:
    api.config(audit_proofs=False)
    response = api.call("POST", "/packages", json={"PackageName": "x", "Initiator": "a@example.com",
                                                    "CorrelationId": "corr"})
    assert response.status_code == 409


def test_error_body_can_be_an_array(api: Api) -> None:
    api.config(error_format="array")
    response = api.call("POST", "/packages", json={})
    assert response.status_code == 400
    body = response.json()
    assert isinstance(body, list) and body[0]["ErrorCode"] and body[0]["ErrorMessage"]


# ----- documents ----------------------------------------------------------------------------------

def test_add_document_json_finds_fields_markers_and_coordinates(api: Api) -> None:
    package_id = api.create()
    pdf = make_pdf(pages=2, markers={2: ["#SIGN_HERE#"]}, signature_fields={"SignatureA": (1, 300, 100, 450, 150)},
                   text_fields={"NameField": (1, 72, 600, 200, 620)})
    body = api.add_document(package_id, pdf, ExternalDocumentReference="DOC-1", SigningFields=[
        {"MarkerOrFieldId": "#SIGN_HERE#", "Label": "marker"},
        {"MarkerOrFieldId": "SignatureA"},
        {"MarkerOrFieldId": "NameField", "Label": "text-field"},
        coordinates(page=-1, label="last-page"),
    ])
    assert body["CreationTimestamp"].endswith("Z")  # as a real captured answer has it
    labels = {location["Label"]: location["PageNumber"] for location in body["Locations"]}
    assert labels == {"marker": 2, "SignatureA": 1, "text-field": 1, "last-page": 2}
    listed = api.call("GET", f"/packages/{package_id}/locations").json()
    assert listed["Documents"][0]["ExternalDocumentReference"] == "DOC-1"
    assert [loc["Id"] for loc in listed["Documents"][0]["Locations"]] == [loc["Id"] for loc in body["Locations"]]


def test_add_document_without_fields_detects_empty_signature_fields(api: Api) -> None:
    package_id = api.create()
    pdf = make_pdf(signature_fields={"Sig1": (1, 72, 72, 220, 120), "Sig2": (1, 300, 72, 450, 120)})
    body = api.add_document(package_id, pdf)
    assert sorted(location["Label"] for location in body["Locations"]) == ["Sig1", "Sig2"]


def test_add_document_multipart_upload(api: Api) -> None:
    package_id = api.create()
    files = {
        "Data": (None, '{"DocumentName": "multipart-doc", "SigningFields": [{"MarkerOrFieldId": "#S#"}]}',
                 "application/json; charset=utf-8"),
        "Document": ("doc.pdf", make_pdf(markers={1: ["#S#"]}), "application/pdf"),
    }
    response = api.call("POST", f"/packages/{package_id}/documents", files=files)
    assert response.status_code == 200, response.text
    assert response.json()["Locations"][0]["Label"] == "#S#"
    assert api.status(package_id)["PackageDocuments"][0]["DocumentName"] == "multipart-doc"


def test_add_document_rejects_bad_input(api: Api) -> None:
    package_id = api.create()
    pdf = signable_pdf()
    cases = [
        ({"DocumentName": "x"}, 400, "Document.Document.Required"),
        ({"DocumentName": "x", "Document": "***not base64***"}, 400, "Document.Document.Invalid"),
        ({"DocumentName": "x", "Document": b64(b"plain text, not a PDF")}, 400, "Document.Document.Invalid"),
        ({"DocumentName": "x", "Document": b64(pdf[: len(pdf) // 2])}, 400, "Document.Document.Invalid"),
        ({"Document": b64(pdf)}, 400, "Document.DocumentName.Required"),
        ({"DocumentName": "x", "Document": b64(pdf), "DocumentLanguage": "xx"},
         400, "Document.DocumentLanguage.Invalid"),
        ({"DocumentName": "x", "Document": b64(pdf), "SigningFields": [{"MarkerOrFieldId": "#NOPE#"}]},
         409, "Document.MarkerNotFound"),
        ({"DocumentName": "x", "Document": b64(pdf), "SigningFields": [coordinates(page=0)]},
         400, "SigningFields.PageNumber.Invalid"),
        ({"DocumentName": "x", "Document": b64(pdf), "SigningFields": [coordinates(page=3)]},
         400, "SigningFields.PageNumber.Invalid"),
        ({"DocumentName": "x", "Document": b64(pdf), "SigningFields": [coordinates(left=590)]},
         400, "SigningFields.Rectangle.Invalid"),
        ({"DocumentName": "x", "Document": b64(pdf), "SigningFields": [coordinates(label="a"), coordinates(label="a")]},
         400, "SigningFields.Label.Duplicate"),
        ({"DocumentName": "x", "Document": b64(pdf), "SigningFields": [coordinates()] * 31},
         400, "SigningFields.TooMany"),
    ]
    for body, status, code in cases:
        response = api.call("POST", f"/packages/{package_id}/documents", json=body)
        assert (response.status_code, error_code(response)) == (status, code), body.keys()
    assert api.status(package_id)["PackageDocuments"] == []
    assert api.call("POST", "/packages/00000000-0000-0000-0000-000000000000/documents",
                    json={"DocumentName": "x", "Document": b64(pdf)}).status_code == 404


def test_xml_documents_are_accepted_when_well_formed(api: Api) -> None:
    package_id = api.create()
    good = api.call("POST", f"/packages/{package_id}/documents", json={
        "DocumentName": "data", "DocumentType": "application/xml",
        "Document": b64(b"<invoice><total>1</total></invoice>"),
        "Representation": b64(signable_pdf()), "RepresentationType": "application/pdf",
        "SigningFields": [coordinates()]})
    assert good.status_code == 200, good.text
    bad = api.call("POST", f"/packages/{package_id}/documents", json={
        "DocumentName": "data", "DocumentType": "application/xml", "Document": b64(b"<unclosed>")})
    assert bad.status_code == 400


def test_documents_only_go_into_draft_packages(api: Api) -> None:
    package = api.pending_package()
    response = api.call("POST", f"/packages/{package['PackageId']}/documents",
                        json={"DocumentName": "late", "Document": b64(signable_pdf())})
    assert response.status_code == 409


def test_delete_document(api: Api) -> None:
    package_id = api.create()
    document_id = api.add_document(package_id)["DocumentId"]
    assert api.call("DELETE", f"/packages/{package_id}/documents/{package_id}").status_code == 404
    assert api.call("DELETE", f"/packages/{package_id}/documents/{document_id}").status_code == 200
    assert api.status(package_id)["PackageDocuments"] == []
    pending = api.pending_package()
    pending_document = pending["PackageDocuments"][0]["DocumentId"]
    assert api.call("DELETE", f"/packages/{pending['PackageId']}/documents/{pending_document}").status_code == 409


def test_get_signing_locations_unknown_package_is_404(api: Api) -> None:
    assert api.call("GET", "/packages/6d3a1c9e-0000-4000-8000-000000000000/locations").status_code == 404


# ----- process ------------------------------------------------------------------------------------

def test_set_process_validates_stakeholders(api: Api) -> None:
    package_id = api.create()
    location = api.add_document(package_id, SigningFields=[coordinates()])["Locations"][0]["Id"]
    cases = [
        ({"Stakeholders": []}, 400),
        ({"Stakeholders": [{"LastName": "x", "Actors": [{"Type": "Signer", "LocationIds": [location]}]}]}, 400),
        ({"Stakeholders": [person("a@example.com", [])]}, 400),  # a signer without locations
        ({"Stakeholders": [person("a@example.com", ["3f9a0a63-0000-4000-8000-000000000000"])]}, 404),
        ({"Stakeholders": [person("a@example.com", [location]), person("b@example.com", [location])]}, 409),
        ({"Stakeholders": [{"EmailAddress": "a@example.com", "Actors": [{"Type": "Approver"}]}]}, 400),  # v3.1 only
        ({"Stakeholders": [{"EmailAddress": "a@example.com", "Actors": [
            {"Type": "Signer", "LocationIds": [location], "SigningTypes": [{"SigningType": "Telepathy"}]}]}]}, 400),
        ({"Stakeholders": [{"EmailAddress": "a@example.com", "Actors": [
            {"Type": "Signer", "LocationIds": [location], "Phonenumber": "0477 12 34 56"}]}]}, 400),
    ]
    for body, status in cases:
        assert api.call("PUT", f"/packages/{package_id}/process", json=body).status_code == status, body
    ok = {"Stakeholders": [{"EmailAddress": "a@example.com", "LastName": "A", "Actors": [
        {"Type": "signer", "OrderIndex": "1", "LocationIds": [location], "PhoneNumber": "+32477123456",
         "RedirectURL": "https://example.com/done", "SigningTypes": [{"SigningType": "smsotp"}]}]}]}
    assert api.call("PUT", f"/packages/{package_id}/process", json=ok).status_code == 200
    assert api.call("PUT", "/packages/0c1f4a3e-0000-4000-8000-000000000000/process", json=ok).status_code == 404
    api.call("PUT", f"/packages/{package_id}/status", json={"Status": "Pending"})
    assert api.call("PUT", f"/packages/{package_id}/process", json=ok).status_code == 409


def test_set_process_v31_groups_and_approvers(api: Api) -> None:
    package_id = api.create()
    locations = [loc["Id"] for loc in api.add_document(
        package_id, SigningFields=[coordinates(top=100), coordinates(top=200)])["Locations"]]
    v31 = Api(api.handle, "v3.1")
    body = {"Stakeholders": [
        {"Type": "Person", "EmailAddress": "boss@example.com", "LastName": "Boss",
         "Actors": [{"Type": "Approver", "OrderIndex": 1}]},
        {"Type": "PersonGroup", "PersonGroupName": "Lawyers", "Persons": [
            {"EmailAddress": "l1@example.com", "LastName": "One"},
            {"EmailAddress": "l2@example.com", "LastName": "Two"}],
         "Actors": [{"Type": "Signer", "OrderIndex": 2, "Locations": [{"Id": locations[0]}]}]},
        {"Type": "ContactGroup", "ContactGroupCode": "HR",
         "Actors": [{"Type": "Signer", "OrderIndex": 2,
                     "Locations": [{"Id": locations[1], "LegalNoticeCode": "LEGALNOTICE1"}]}]},
    ]}
    assert v31.call("PUT", f"/packages/{package_id}/process", json=body).status_code == 200
    status = api.call("PUT", f"/packages/{package_id}/status", json={"Status": "Pending"}).json()
    approver, group, contacts = (holder["Actors"][0] for holder in status["Stakeholders"])
    assert contacts["ActionUrls"][0]["EmailAddress"] == "hr@contactgroup.sandbox"
    assert approver["ActorStatus"] == "Available" and approver["ActionUrl"]
    assert group["ActorStatus"] == "Draft" and group["ActionUrl"] is None
    assert [url["EmailAddress"] for url in group["ActionUrls"]] == ["l1@example.com", "l2@example.com"]
    assert status["Stakeholders"][1]["PersonGroupName"] == "Lawyers"
    assert status["Stakeholders"][2]["ContactGroupCode"] == "HR"
    # Approvers must come before signers.
    wrong = {"Stakeholders": [{"EmailAddress": "boss@example.com", "Actors": [{"Type": "Approver", "OrderIndex": 5}]},
                              person("s@example.com", [locations[0]], order=1)]}
    other = api.create()
    api.add_document(other)
    assert v31.call("PUT", f"/packages/{other}/process", json=wrong).status_code in (400, 404)
    assert v31.call("PUT", f"/packages/{package_id}/process", json=body).status_code == 409


# ----- status -------------------------------------------------------------------------------------

def test_set_status_pending_needs_documents_and_signers(api: Api) -> None:
    package_id = api.create()
    assert api.call("PUT", f"/packages/{package_id}/status", json={"Status": "Pending"}).status_code == 409
    api.add_document(package_id)
    response = api.call("PUT", f"/packages/{package_id}/status", json={"Status": "Pending"})
    assert (response.status_code, error_code(response)) == (409, "Package.NoSigners")
    assert api.call("PUT", f"/packages/{package_id}/status", json={"Status": "Finished"}).status_code == 400
    assert api.call("PUT", f"/packages/{package_id}/status", json={}).status_code == 400
    assert api.call("PUT", f"/packages/{package_id}/status", json={"Status": "Revoked"}).status_code == 409
    assert api.call("PUT", "/packages/ab2c4c1e-0000-4000-8000-000000000000/status",
                    json={"Status": "Pending"}).status_code == 404


def test_pending_then_revoked(api: Api) -> None:
    package = api.pending_package()
    assert package["PackageStatus"] == "Pending"
    assert all(actor["ActionUrl"].startswith(api.handle.root_url) for holder in package["Stakeholders"]
               for actor in holder["Actors"])
    response = api.call("PUT", f"/packages/{package['PackageId']}/status", json={"status": "revoked"})
    assert response.status_code == 200 and response.json()["PackageStatus"] == "Revoked"
    assert api.call("PUT", f"/packages/{package['PackageId']}/status", json={"Status": "Pending"}).status_code == 409


def test_get_status_unknown_is_404(api: Api) -> None:
    response = api.call("GET", "/packages/1e0e3c66-0000-4000-8000-000000000000/status")
    assert response.status_code == 404
    assert error_code(response).startswith("Package.NotFound:")


# ----- instant package ----------------------------------------------------------------------------

def instant_body(**extra: object) -> dict[str, object]:
    return {"Document": b64(make_pdf(markers={1: ["#A#"]})), "DocumentName": "quick", "Initiator": "i@example.com",
            "ExternalPackageReference": "INSTANT-1", "Stakeholders": [
                {"EmailAddress": "s@example.com", "FirstName": "Sam", "LastName": "Signer", "Actors": [
                    {"Type": "Signer", "SigningFields": [{"MarkerOrFieldId": "#A#", "Label": "A"}]}]},
                {"EmailAddress": "r@example.com", "LastName": "Reader",
                 "Actors": [{"Type": "Receiver", "OrderIndex": 2}]}],
            **extra}


def test_instant_package_is_pending_at_once(api: Api) -> None:
    response = api.call("POST", "/packages/instant", json=instant_body())
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["PackageStatus"] == "Pending" and body["PackageName"] == "quick"
    assert body["PackageDocuments"][0]["Locations"][0]["Label"] == "A"
    signer, receiver = (holder["Actors"][0] for holder in body["Stakeholders"])
    assert signer["ActorStatus"] == "Available" and signer["ActionUrl"]
    assert receiver["ActorStatus"] == "Draft" and receiver["ActionUrl"] is None
    assert body["Warnings"] == []


def test_instant_package_multipart_and_errors(api: Api) -> None:
    body = instant_body()
    document = body.pop("Document")
    import base64
    import json
    files = {"Data": (None, json.dumps(body), "application/json"),
             "Document": ("quick.pdf", base64.b64decode(document), "application/pdf")}
    assert api.call("POST", "/packages/instant", files=files).status_code == 200
    assert api.call("POST", "/packages/instant", json=instant_body(Document=b64(b"nope"))).status_code == 400
    no_fields = instant_body()
    no_fields["Stakeholders"][0]["Actors"][0].pop("SigningFields")  # type: ignore[index]
    assert api.call("POST", "/packages/instant", json=no_fields).status_code == 400
    missing = instant_body()
    missing.pop("Initiator")
    assert api.call("POST", "/packages/instant", json=missing).status_code == 400
    assert api.call("GET", "/packages?Status=Draft").json()["Total"] == 0  # failed instants leave nothing


# ----- list ---------------------------------------------------------------------------------------

def test_package_list_pages_filters_and_sorts(api: Api) -> None:
    ids = [api.create(PackageName=f"P{n}", ExternalPackageReference=f"R{n}") for n in range(5)]
    moved = datetime.fromisoformat(api.admin("POST", "clock", json={"advance_s": 10})["now"])
    boundary = (moved - timedelta(seconds=5)).isoformat()
    later = api.create(PackageName="Later")
    seen, token = [], ""
    while True:
        page = api.call("GET", "/packages", params={"MaxQuantity": 2, "ContinuationToken": token}).json()
        assert page["Total"] == 6 and page["MaxQuantity"] == 2
        seen += [item["Id"] for item in page["Items"]]
        token = page["ContinuationToken"]
        if not token:
            break
    assert len(seen) == 6 and set(seen) == {*ids, later}
    assert seen[-1] == later  # ascending creation time
    newest_first = api.call("GET", "/packages", params={"SortOrder": "DESC", "MaxQuantity": 1}).json()
    assert newest_first["Items"][0]["Id"] == later
    by_name = api.call("GET", "/packages", params={"SortField": "PackageName", "SortOrder": "desc"}).json()
    assert by_name["Items"][0]["Id"] == ids[4]
    after = api.call("GET", "/packages", params={"createdAfterDate": boundary}).json()
    assert [item["Id"] for item in after["Items"]] == [later]
    before = api.call("GET", "/packages", params={"CreatedBeforeDate": boundary}).json()
    assert sorted(item["Id"] for item in before["Items"]) == sorted(ids)
    assert api.call("GET", "/packages", params={"Status": "DRAFT"}).json()["Total"] == 6
    assert api.call("GET", "/packages", params={"Status": "Pending"}).json()["Total"] == 0


def test_package_list_rejects_bad_parameters(api: Api) -> None:
    for params in ({"MaxQuantity": "many"}, {"MaxQuantity": 0}, {"SortOrder": "UP"}, {"SortField": "Colour"},
                   {"Status": "Lost"}, {"CreatedBeforeDate": "yesterday"}, {"ContinuationToken": "not-a-token"}):
        assert api.call("GET", "/packages", params=params).status_code == 400, params


# ----- skip, reminders, expiry, delete ------------------------------------------------------------

def test_skip_signers(api: Api) -> None:
    package = api.pending_package(signers=["a@example.com", "b@example.com", "c@example.com"])
    package_id = package["PackageId"]
    response = api.call("POST", f"/packages/{package_id}/skipsigners")
    assert (response.status_code, error_code(response)) == (409, f"Package.NotSigned:{package_id}")
    api.act(package_id, actor_ids(package)[0], "sign")
    assert api.call("POST", f"/packages/{package_id}/skipsigners").status_code == 200
    status = api.status(package_id)
    assert status["PackageStatus"] == "Finished"
    assert [actor["ActorStatus"] for holder in status["Stakeholders"] for actor in holder["Actors"]] == [
        "Finished", "Skipped", "Skipped"]
    assert error_code(api.call("POST", "/packages/5b0c5bd6-0000-4000-8000-000000000000/skipsigners")).startswith(
        "Package.NotFound:")


def test_reminders_are_counted(api: Api) -> None:
    draft = api.create()
    assert api.call("POST", f"/packages/{draft}/reminders").status_code == 409
    assert api.call("POST", "/packages/7a3ff1c0-0000-4000-8000-000000000000/reminders").status_code == 400
    package = api.pending_package()
    for _ in range(3):
        assert api.call("POST", f"/packages/{package['PackageId']}/reminders").status_code == 200
    assert api.admin("GET", "stats")["reminders_by_package"][package["PackageId"]] == 3
    state = api.admin("GET", f"packages/{package['PackageId']}")
    assert state["reminders"] == 3
    assert [actor["reminders"] for holder in state["stakeholders"] for actor in holder["actors"]] == [3, 0]


def test_expiry_extension(api: Api) -> None:
    package = api.pending_package()
    package_id = package["PackageId"]
    for body in ({}, {"ExpiryTimestamp": "soon"}, {"ExpiryTimestamp": "2000-01-01T00:00:00Z"}):
        assert api.call("PUT", f"/packages/{package_id}/expirytimestamp", json=body).status_code == 400
    assert api.call("PUT", f"/packages/{package_id}/expirytimestamp",
                    json={"ExpiryTimestamp": "2099-01-01T00:00:00Z"}).status_code == 200
    assert api.status(package_id)["ExpiryTimestamp"] == "2099-01-01T00:00:00Z"
    api.call("PUT", f"/packages/{package_id}/status", json={"Status": "Revoked"})
    assert api.call("PUT", f"/packages/{package_id}/expirytimestamp",
                    json={"ExpiryTimestamp": "2099-01-01T00:00:00Z"}).status_code == 409


def test_delete_package(api: Api) -> None:
    draft = api.create()
    assert api.call("DELETE", f"/packages/{draft}").status_code == 200
    assert api.call("GET", f"/packages/{draft}/status").status_code == 404
    assert api.call("DELETE", f"/packages/{draft}").status_code == 404
    pending = api.pending_package()["PackageId"]
    assert api.call("DELETE", f"/packages/{pending}").status_code == 409
    api.call("PUT", f"/packages/{pending}/status", json={"Status": "Revoked"})
    assert api.call("DELETE", f"/packages/{pending}").status_code == 200


# ----- downloads ----------------------------------------------------------------------------------

def test_downloads_need_a_finished_package_and_carry_stamps(api: Api) -> None:
    package = api.pending_package(PackageName="Signed bundle")
    package_id = package["PackageId"]
    document_id = package["PackageDocuments"][0]["DocumentId"]
    assert api.call("GET", f"/packages/{package_id}/download").status_code == 409
    assert api.call("GET", f"/packages/{package_id}/download/{document_id}").status_code == 409
    for actor_id in actor_ids(package):
        assert api.act(package_id, actor_id, "sign").status_code == 200
    response = api.call("GET", f"/packages/{package_id}/download/{document_id}")
    assert response.status_code == 200 and response.headers["Content-Type"] == "application/pdf"
    text = PdfReader(io.BytesIO(response.content)).pages[0].extract_text()
    assert "Signed by Anna Tester" in text and "Signed by Bert Tester" in text
    bundle = api.call("GET", f"/packages/{package_id}/download")
    assert bundle.status_code == 200 and "Signed bundle.zip" in bundle.headers["Content-Disposition"]
    with zipfile.ZipFile(io.BytesIO(bundle.content)) as archive:
        assert archive.namelist() == ["contract.pdf"]
        assert archive.read("contract.pdf") == response.content
    assert api.call("GET", f"/packages/{package_id}/download/{package_id}").status_code == 404
    assert api.call("GET", "/packages/4f0d3e3b-0000-4000-8000-000000000000/download").status_code == 404
