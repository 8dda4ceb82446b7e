"""Packages and actors move through the real state machines: order, auto-sign, expiry, audit proofs."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree

from tests.sandbox.conftest import Api, actor_ids, actor_statuses, b64, coordinates, person, signable_pdf
from tests.sandbox.proof_shape import shape_errors, uploads_of


def test_signers_become_available_in_order_index_sequence(api: Api) -> None:
    package = api.pending_package(signers=["a@example.com", "b@example.com", "c@example.com"])
    package_id = package["PackageId"]
    first, second, third = actor_ids(package)
    assert actor_statuses(package) == ["Available", "Draft", "Draft"]
    assert api.act(package_id, second, "sign").status_code == 409  # not its turn
    api.act(package_id, first, "sign")
    status = api.status(package_id)
    assert actor_statuses(status) == ["Finished", "Available", "Draft"]
    actor = status["Stakeholders"][0]["Actors"][0]
    assert actor["CompletedBy"] == "A Tester" and actor["CompletedTimestamp"].endswith("Z")
    assert actor["Locations"][0]["UsedSigningType"] == "Manual"
    api.act(package_id, second, "sign")
    api.act(package_id, third, "sign")
    status = api.status(package_id)
    assert status["PackageStatus"] == "Finished"
    assert actor_statuses(status) == ["Finished"] * 3


def test_equal_order_index_signs_in_parallel_and_receivers_follow(api: Api) -> None:
    package_id = api.create()
    locations = [loc["Id"] for loc in api.add_document(
        package_id, SigningFields=[coordinates(top=100), coordinates(top=200)])["Locations"]]
    stakeholders = [person("a@example.com", [locations[0]], order=1), person("b@example.com", [locations[1]], order=1),
                    person("r@example.com", [], order=2, kind="Receiver")]
    api.call("PUT", f"/packages/{package_id}/process", json={"Stakeholders": stakeholders})
    status = api.call("PUT", f"/packages/{package_id}/status", json={"Status": "Pending"}).json()
    assert actor_statuses(status) == ["Available", "Available", "Draft"]
    first, second, _ = actor_ids(status)
    api.act(package_id, second, "sign")
    assert actor_statuses(api.status(package_id)) == ["Available", "Finished", "Draft"]
    api.act(package_id, first, "sign")
    final = api.status(package_id)
    assert final["PackageStatus"] == "Finished"
    assert actor_statuses(final) == ["Finished", "Finished", "Finished"]


def test_reject_ends_the_package(api: Api) -> None:
    package = api.pending_package()
    first = actor_ids(package)[0]
    opened = api.act(package["PackageId"], first, "reject", reason="Wrong amount")
    assert opened.status_code == 200
    status = api.status(package["PackageId"])
    assert status["PackageStatus"] == "Rejected"
    assert status["Stakeholders"][0]["Actors"][0]["Reason"] == "Wrong amount"
    assert actor_statuses(status) == ["Rejected", "Draft"]
    assert api.act(package["PackageId"], first, "sign").status_code == 409


def test_failed_package_and_actor(api: Api) -> None:
    package = api.pending_package()
    response = api.act(package["PackageId"], actor_ids(package)[0], "fail", reason="signing service down")
    assert response.status_code == 200
    status = api.status(package["PackageId"])
    assert status["PackageStatus"] == "Failed" and actor_statuses(status)[0] == "Failed"
    other = api.pending_package()["PackageId"]
    api.admin("POST", f"packages/{other}/fail")
    assert api.status(other)["PackageStatus"] == "Failed"


def test_auto_sign_follows_the_sandbox_clock(api: Api) -> None:
    api.config(auto_sign=True, auto_sign_delay=300)
    package = api.pending_package()
    assert actor_statuses(api.status(package["PackageId"])) == ["Available", "Draft"]
    api.admin("POST", "clock", json={"advance_s": 301})
    assert actor_statuses(api.status(package["PackageId"])) == ["Finished", "Available"]
    api.admin("POST", "clock", json={"advance_s": 301})
    assert api.status(package["PackageId"])["PackageStatus"] == "Finished"


def test_auto_sign_rejects_by_rule(api: Api) -> None:
    api.config(auto_sign=True, auto_sign_delay=0, reject_substring="refuse")
    package = api.pending_package(signers=["happy@example.com", "please-refuse@example.com"])
    api.admin("POST", "clock", json={"advance_s": 1})
    api.admin("POST", "clock", json={"advance_s": 1})
    status = api.status(package["PackageId"])
    assert status["PackageStatus"] == "Rejected"
    assert actor_statuses(status) == ["Finished", "Rejected"]


def test_auto_sign_without_a_clock_jump(api: Api) -> None:
    from tests.sandbox.conftest import wait_until

    api.config(auto_sign=True, auto_sign_delay=0.05)
    package = api.pending_package()
    wait_until(lambda: api.status(package["PackageId"])["PackageStatus"] == "Finished", timeout_s=60)


def test_expiry_at_expiry_timestamp_and_revival(api: Api) -> None:
    clock = api.admin("GET", "clock")
    assert clock["offset_s"] == 0
    package = api.pending_package(ExpiryTimestamp="2099-01-01T00:00:00Z")
    package_id = package["PackageId"]
    api.admin("POST", "clock", json={"now": "2099-01-01T00:00:01Z"})
    status = api.status(package_id)
    assert status["PackageStatus"] == "Expired"
    assert api.act(package_id, actor_ids(package)[0], "sign").status_code == 409
    assert api.call("DELETE", f"/packages/{package_id}").status_code == 409
    assert api.call("PUT", f"/packages/{package_id}/expirytimestamp",
                    json={"ExpiryTimestamp": "2099-02-01T00:00:00Z"}).status_code == 200
    assert api.status(package_id)["PackageStatus"] == "Pending"
    assert api.act(package_id, actor_ids(package)[0], "sign").status_code == 200


def test_clock_never_goes_backwards(api: Api) -> None:
    import requests

    response = requests.post(f"{api.handle.root_url}/_sandbox/clock", json={"advance_s": -5}, timeout=5)
    assert response.status_code == 400
    api.admin("POST", "clock", json={"advance_s": 3600})
    assert api.admin("GET", "clock")["offset_s"] >= 3600
    api.handle.reset()
    assert api.admin("GET", "clock")["offset_s"] == 0


def test_request_link_replaces_the_action_url(api: Api) -> None:
    import requests

    package = api.pending_package()
    actor = package["Stakeholders"][0]["Actors"][0]
    response = api.act(package["PackageId"], actor["ActorId"], "request-link")
    assert response.status_code == 200
    new_url = response.json()["ActionUrl"]
    assert new_url != actor["ActionUrl"]
    assert api.status(package["PackageId"])["Stakeholders"][0]["Actors"][0]["ActionUrl"] == new_url
    assert requests.get(actor["ActionUrl"], timeout=5).status_code == 404
    assert requests.get(new_url, timeout=5).status_code == 200


def test_opening_the_action_url_marks_the_actor_in_progress(api: Api) -> None:
    import requests

    package = api.pending_package()
    page = requests.get(package["Stakeholders"][0]["Actors"][0]["ActionUrl"], timeout=5)
    assert page.status_code == 200 and "sign-button" in page.text
    assert actor_statuses(api.status(package["PackageId"]))[0] == "InProgress"
    waiting = requests.get(package["Stakeholders"][1]["Actors"][0]["ActionUrl"], timeout=5)
    assert "not your turn" in waiting.text and "sign-button" not in waiting.text
    signed = requests.post(package["Stakeholders"][0]["Actors"][0]["ActionUrl"],
                           data={"action": "sign", "name": "Anna Form"}, timeout=5)
    assert signed.status_code == 200 and "You signed" in signed.text
    assert api.status(package["PackageId"])["Stakeholders"][0]["Actors"][0]["CompletedBy"] == "Anna Form"


# ----- audit proofs -------------------------------------------------------------------------------

def test_audit_proofs_in_the_reference_shape(api: Api) -> None:
    package = api.pending_package(CorrelationId="corr-1")
    package_id = package["PackageId"]
    document_id = package["PackageDocuments"][0]["DocumentId"]
    assert api.call("GET", f"/packages/{package_id}/auditproof/download").status_code == 409
    location_id = package["Stakeholders"][0]["Actors"][0]["Locations"][0]["Id"]
    proof = {"LocationId": location_id, "Name": "OTP check", "Type": "sms-otp", "Description": "code matched",
             "Content": "otp=ok", "IpAddress": "10.1.2.3"}
    assert api.call("POST", f"/packages/{package_id}/auditproof/proofs", json=proof).status_code == 204
    assert api.call("POST", f"/packages/{package_id}/auditproof/proofs", json={"Name": "x"}).status_code == 400
    assert api.call("POST", f"/packages/{package_id}/auditproof/proofs",
                    json=proof | {"LocationId": package_id}).status_code == 404
    for actor_id in actor_ids(package):
        api.act(package_id, actor_id, "sign")
    response = api.call("GET", f"/packages/{package_id}/auditproof/download")
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("application/xml")
    uploads = ElementTree.fromstring(response.content)  # the root: the swagger shows no wrapper
    assert uploads.tag == "uploads" and uploads.get("packageId") == package_id
    assert shape_errors(uploads) == []  # nothing of our own invention
    assert uploads.get("packageCorrelationId") == "corr-1"
    signatures = uploads.findall("upload/signatures/signature")
    assert len(signatures) == 2
    first = next(s for s in signatures if s.get("locationId") == location_id)
    proofs = first.findall("proofs/proof")
    assert [p.findtext("name") for p in proofs][1] == "OTP check"
    assert proofs[1].get("ipAddress") == "10.1.2.3" and proofs[1].findtext("type") == "sms-otp"
    assert uploads.find("upload/start").text and uploads.find("upload/end").text  # type: ignore[union-attr]
    assert uploads.find("indexes/index/content") is not None
    document = api.call("GET", f"/packages/{package_id}/auditproof/download/{document_id}")
    assert document.status_code == 200
    own = ElementTree.fromstring(document.content)
    assert own.tag == "uploads" and shape_errors(own) == [] and len(own.findall("upload")) == 1
    assert api.call("GET", f"/packages/{package_id}/auditproof/download/{package_id}").status_code == 404


def test_correlation_audit_proofs(api: Api) -> None:
    first = api.finished_package(CorrelationId="batch-7")
    second = api.pending_package(CorrelationId="batch-7")
    assert api.call("GET", "/packagecorrelations/batch-7/auditproof/download").status_code == 409
    for actor_id in actor_ids(second):
        api.act(second["PackageId"], actor_id, "sign")
    response = api.call("GET", "/packagecorrelations/batch-7/auditproof/download")
    assert response.status_code == 200
    ids = {uploads.get("packageId") for uploads in uploads_of(response.content)}  # several: under a wrapper
    assert ids == {first["PackageId"], second["PackageId"]}
    assert api.call("GET", "/packagecorrelations/nothing/auditproof/download").status_code == 404
    package_id = api.create()
    api.add_document(package_id, CorrelationId="doc-corr", SigningFields=[coordinates()])
    assert api.call("POST", f"/packages/{package_id}/documents", json={
        "DocumentName": "again", "Document": b64(signable_pdf()), "CorrelationId": "doc-corr"}).status_code == 400
    assert api.call("GET", "/documentcorrelations/doc-corr/auditproof/download").status_code == 409
    assert api.call("GET", "/documentcorrelations/none/auditproof/download").status_code == 404


def test_audit_proofs_can_be_disabled(api: Api) -> None:
    package = api.finished_package()
    api.config(audit_proofs=False)
    assert api.call("GET", f"/packages/{package['PackageId']}/auditproof/download").status_code == 409
