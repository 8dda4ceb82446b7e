"""Wire models (PascalCase on the wire, snake_case in Python) and the error tree."""

from __future__ import annotations

import pytest

from shared.config import Settings
from shared.connection import connective_config
from shared.connective import (
    AuthenticationError,
    ConflictError,
    ConnectiveConfig,
    ConnectiveHTTPError,
    InvalidRequestError,
    NotFoundError,
    ServerError,
    ThrottledError,
)
from shared.connective.errors import error_from_response
from shared.connective.models import (
    ActorStatus,
    CreateInstantPackageRequest,
    CreatePackageRequest,
    InstantPackage,
    PackageInfo,
    PackageList,
    PackageStatus,
    SetProcessRequest,
    SetProcessV31Request,
)


def test_requests_serialise_to_pascal_case_and_skip_unset_fields():
    request = CreatePackageRequest(initiator="a@b.c", package_name="Contract", call_back_url="https://cb",
                                   f2f_redirect_url="https://f2f", external_package_reference="ref-1")
    assert request.to_wire() == {"Initiator": "a@b.c", "PackageName": "Contract", "CallBackUrl": "https://cb",
                                 "F2FRedirectUrl": "https://f2f", "ExternalPackageReference": "ref-1"}


def test_requests_accept_wire_names_and_pass_extra_keys_through():
    request = CreatePackageRequest.model_validate({"Initiator": "a@b.c", "PackageName": "p", "FutureField": 1})
    assert request.initiator == "a@b.c"
    assert request.to_wire()["FutureField"] == 1


def test_instant_package_actors_carry_signing_fields_with_coordinates_as_strings():
    request = CreateInstantPackageRequest.model_validate({
        "initiator": "a@b.c", "document_name": "doc", "document_language": "en",
        "stakeholders": [{"email_address": "s@x.y", "first_name": "S", "last_name": "X", "language": "en",
                          "actors": [{"type": "signer", "order_index": 1,
                                      "signing_fields": [{"page_number": 1, "left": 10, "top": 20.5,
                                                          "width": 100, "height": 40, "label": "SIG01"}],
                                      "signing_types": [{"signing_type": "Manual"}], "PhoneNumber": "+3247"}]}],
    })
    actor = request.to_wire()["Stakeholders"][0]["Actors"][0]
    assert actor["Type"] == "Signer"
    assert actor["SigningFields"][0] == {"PageNumber": 1, "Left": "10", "Top": "20.5", "Width": "100",
                                         "Height": "40", "Label": "SIG01"}
    assert actor["SigningTypes"] == [{"SigningType": "Manual"}]
    assert actor["Phonenumber"] == "+3247"


def test_process_v3_and_v31_shapes():
    v3 = SetProcessRequest.model_validate({"stakeholders": [
        {"email_address": "s@x.y", "actors": [{"type": "Signer", "location_ids": ["l1"], "RedirectURL": "https://r"}]}]})
    # Set Process Information's own schema in the connector's swagger spells RedirectURL.
    assert v3.to_wire()["Stakeholders"][0]["Actors"][0] == {"Type": "Signer", "LocationIds": ["l1"],
                                                            "RedirectURL": "https://r"}
    v31 = SetProcessV31Request.model_validate({"stakeholders": [
        {"type": "PersonGroup", "person_group_name": "Board",
         "persons": [{"email_address": "a@x.y"}, {"email_address": "b@x.y"}],
         "actors": [{"type": "Approver", "order_index": 1},
                    {"type": "Signer", "order_index": 2, "redirect_type": "AfterCompletion",
                     "locations": [{"id": "l1", "legal_notice_code": "LEGALNOTICE1"}]}]}]})
    stakeholder = v31.to_wire()["Stakeholders"][0]
    assert stakeholder["Type"] == "PersonGroup" and stakeholder["Persons"][1] == {"EmailAddress": "b@x.y"}
    assert stakeholder["Actors"][1]["Locations"] == [{"Id": "l1", "LegalNoticeCode": "LEGALNOTICE1"}]


def test_status_response_is_read_case_insensitively_and_keeps_unknown_fields():
    info = PackageInfo.model_validate({
        "PackageStatus": "DRAFT", "packagename": "p", "DocumentGroupCode": "00001", "ExpiryTimestamp": None,
        "PackageDocuments": None,
        "Stakeholders": [{"Type": "Person", "StakeholderId": "s1",
                          "Actors": {"Type": "Receiver", "ActorId": "a1", "ActorStatus": "inprogress",
                                     "Locations": [{"Id": "l1", "UserSigningType": "Manual"}]}}],
    })
    assert info.package_status is PackageStatus.DRAFT
    assert info.package_name == "p"
    assert info.model_extra == {"DocumentGroupCode": "00001"}
    assert info.package_documents == []
    actor = info.actors()[0]
    assert actor.actor_status is ActorStatus.IN_PROGRESS
    assert actor.locations[0].used_signing_type == "Manual"


def test_instant_package_and_list_responses():
    instant = InstantPackage.model_validate({"PackageId": "p1", "PackageStatus": "Pending", "Warnings": ["w"],
                                             "PackageDocuments": [{"DocumentId": "d1", "Locations": [
                                                 {"Id": "l1", "Label": "SIG01", "PageNumber": 1}]}]})
    assert instant.package_documents[0].locations[0].label == "SIG01"
    page = PackageList.model_validate({"ContinuationToken": "t", "MaxQuantity": 2, "Total": 21,
                                       "Items": [{"Id": "p1", "PackageStatus": "DRAFT",
                                                  "ExternalPackageReference": "r"}]})
    assert page.items[0].package_status is PackageStatus.DRAFT and page.total == 21


@pytest.mark.parametrize(("status", "error_class"), [
    (400, InvalidRequestError), (401, AuthenticationError), (403, AuthenticationError), (404, NotFoundError),
    (409, ConflictError), (429, ThrottledError), (500, ServerError), (502, ServerError), (418, ConnectiveHTTPError),
])
def test_statuses_map_to_error_classes(status, error_class):
    error = error_from_response(status, b"")
    assert type(error) is error_class
    assert error.status == status


@pytest.mark.parametrize("body", [
    b'{"ErrorCode": "Package.NotSigned:p1", "Message": "not signed"}',
    b'[{"ErrorCode": "Package.NotSigned:p1", "ErrorMessage": "not signed"}]',
    b'[{"errorCode": "Package.NotSigned:p1", "message": "not signed"}]',
])
def test_error_bodies_as_object_or_array_with_either_message_name(body):
    error = error_from_response(409, body, operation="skip_signers")
    assert isinstance(error, ConflictError)
    assert error.error_code == "Package.NotSigned:p1"
    assert error.error_code_base == "Package.NotSigned"
    assert error.message == "not signed"
    assert "skip_signers" in str(error) and "409" in str(error)


def test_non_json_error_body_becomes_the_message():
    error = error_from_response(502, b"<html>Bad Gateway</html>", reason="Bad Gateway")
    assert error.error_code is None and "Bad Gateway" in error.message


def test_config_from_settings_derives_the_v31_base_and_the_connection_key():
    config = connective_config(Settings({
        "CONNECTIVE_BASE_URL": "https://esig.example.com/esig/webportalapi/v3/",
        "CONNECTIVE_USERNAME": "api", "CONNECTIVE_PASSWORD": "pw-1234", "CONNECTIVE_RETRY_TOTAL_S": "30",
        "CONNECTIVE_RATE_CALLS": "50", "CONNECTIVE_READ_TIMEOUT_S": "15", "CONNECTIVE_MULTIPART_THRESHOLD_KB": "64"}))
    assert config.base_url == "https://esig.example.com/esig/webportalapi/v3"
    assert config.base_url_v31 == "https://esig.example.com/esig/webportalapi/v3.1"
    assert config.connection_key == "https://esig.example.com/esig/webportalapi/v3|api"
    assert config.timeout == (5.0, 15.0)
    assert config.retry.total_s == 30 and config.rate_calls == 50
    assert config.multipart_threshold_bytes == 64 * 1024
    assert "pw-1234" not in repr(config)


def test_a_base_url_without_v3_is_refused():
    with pytest.raises(ValueError, match="webportalapi/v3"):
        ConnectiveConfig(base_url="https://esig.example.com/webportalapi", username="u", password="p")
