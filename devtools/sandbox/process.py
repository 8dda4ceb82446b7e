"""Set Process Information (v3, v3.1) and the inline process of an instant package: stakeholders and actors."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from devtools.sandbox import fields
from devtools.sandbox.errors import bad_request, conflict, not_found
from devtools.sandbox.model import Actor, Package, Person, Stakeholder, new_id

SIGNING_TYPES = ("Manual", "BeId", "ManualBeId", "SmsOtp", "MailOtp", "Server", "Idin", "BeLawyer", "Biometric",
                 "Itsme")
SIGNING_TYPE_ALIASES = {"digital": "BeId", "manualdigital": "ManualBeId"}
VALIDATIONS = ("Disabled", "MatchId", "NameAndBirthDate")
LEGAL_NOTICES = ("LEGALNOTICE1", "LEGALNOTICE2", "LEGALNOTICE3")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")
PHONE = re.compile(r"^\+[1-9][0-9]{6,14}$")
BIRTH_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

# Given an actor's (folded) body, the ids of the locations it signs. Differs per API version.
LocationResolver = Callable[[dict[str, Any], str], list[str]]


def parse_process(package: Package, body: dict[str, Any], version: str, resolve: LocationResolver) -> list[Stakeholder]:
    """Stakeholders from a (folded) body; version is "3", "3.1" or "instant". Raises ApiError."""
    stakeholder_bodies = fields.objects(body, "Stakeholders", where="Process")
    if not stakeholder_bodies:
        raise bad_request("Process.Stakeholders.Required", "at least one stakeholder is required")
    stakeholders = [_stakeholder(item, index, version, resolve) for index, item in enumerate(stakeholder_bodies)]
    _check_locations(package, stakeholders)
    _check_approvers_first(stakeholders)
    return stakeholders


def _stakeholder(body: dict[str, Any], index: int, version: str, resolve: LocationResolver) -> Stakeholder:
    where = f"Stakeholders[{index}]"
    kinds = ("Person", "PersonGroup", "ContactGroup") if version == "3.1" else ("Person",)
    kind = fields.choice(body, "Type", kinds, where=where, default="Person") or "Person"
    group_name = code = None
    if kind == "Person":
        persons = [_person(body, where)]
    elif kind == "PersonGroup":
        group_name = fields.text(body, "PersonGroupName", required=True, where=where)
        persons = [_person(item, f"{where}.Persons") for item in fields.objects(body, "Persons", where=where)]
        if not persons:
            raise bad_request(f"{where}.Persons.Required", "a PersonGroup needs at least one person")
    else:
        code = fields.text(body, "ContactGroupCode", required=True, where=where)
        persons = [Person(email=f"{(code or '').lower()}@contactgroup.sandbox", last_name=f"Contact group {code}")]
    birth_date = fields.text(body, "BirthDate", where=where)
    if birth_date is not None and not BIRTH_DATE.match(birth_date):
        raise bad_request(f"{where}.BirthDate.Invalid", "BirthDate must be YYYY-MM-DD")
    actor_bodies = fields.objects(body, "Actors", where=where)
    if not actor_bodies:
        raise bad_request(f"{where}.Actors.Required", "every stakeholder needs at least one actor")
    actors = [_actor(item, f"{where}.Actors[{n}]", version, resolve) for n, item in enumerate(actor_bodies)]
    return Stakeholder(
        id=new_id(), type=kind, persons=persons, actors=actors,
        external_reference=fields.text(body, "ExternalStakeholderReference", where=where),
        language=fields.text(body, "Language", where=where), birth_date=birth_date,
        person_group_name=group_name, contact_group_code=code,
    )


def _person(body: dict[str, Any], where: str) -> Person:
    email = fields.text(body, "EmailAddress", required=True, where=where) or ""
    if not EMAIL.match(email):
        raise bad_request(f"{where}.EmailAddress.Invalid", f"{email!r} is not an email address")
    return Person(email=email, first_name=fields.text(body, "FirstName", where=where),
                  last_name=fields.text(body, "LastName", where=where))


def _actor(body: dict[str, Any], where: str, version: str, resolve: LocationResolver) -> Actor:
    kinds = ("Approver", "Signer", "Receiver") if version == "3.1" else ("Signer", "Receiver")
    kind = fields.choice(body, "Type", kinds, where=where)
    if kind is None:
        raise bad_request(f"{where}.Type.Required", f"Type is required ({', '.join(kinds)})")
    order_index = fields.integer(body, "OrderIndex", where=where, default=1)
    phone = fields.text(body, "Phonenumber", where=where) or fields.text(body, "PhoneNumber", where=where)
    if phone is not None and not PHONE.match(phone):
        raise bad_request(f"{where}.Phonenumber.Invalid", "Phonenumber must be E.164 (+32477123456), no spaces")
    signing_types = [_signing_type(item, f"{where}.SigningTypes", version)
                     for item in fields.objects(body, "SigningTypes", where=where)]
    if kind == "Signer" and not signing_types:
        signing_types = [{"SigningType": "Manual"}]
    if kind != "Signer" and (fields.get(body, "LocationIds", "Locations", "SigningFields")):
        raise bad_request(f"{where}.Locations.Invalid", f"a {kind} has no signing locations")
    location_ids = resolve(body, where) if kind == "Signer" else []
    if kind == "Signer" and not location_ids:
        raise bad_request(f"{where}.Locations.Required", "a Signer needs at least one signing location")
    legal_notice = fields.choice(body, "LegalNoticeCode", LEGAL_NOTICES, where=where)
    return Actor(
        id=new_id(), type=kind, order_index=order_index or 0, location_ids=location_ids, signing_types=signing_types,
        redirect_url=fields.absolute_url(body, "RedirectUrl", where=where),
        legal_notice=legal_notice or fields.text(body, "LegalNoticeText", where=where),
    )


def _signing_type(body: dict[str, Any], where: str, version: str) -> dict[str, Any]:
    name = fields.text(body, "SigningType", required=True, where=where) or ""
    canonical = SIGNING_TYPE_ALIASES.get(name.lower())
    if canonical is None:
        canonical = next((option for option in SIGNING_TYPES if option.lower() == name.lower()), None)
    if canonical is None and name.lower().startswith("openidconnect:") and len(name) > len("openidconnect:"):
        canonical = "OpenIdConnect:" + name.split(":", 1)[1]
    if canonical is None:
        raise bad_request(f"{where}.SigningType.Invalid", f"unknown signing type {name!r}")
    if canonical == "Server" and version != "instant":
        raise bad_request(f"{where}.SigningType.Invalid", "the Server signing type is allowed only in instant packages")
    validation = fields.choice(body, "MandatedSignerValidation", VALIDATIONS, where=where)
    if validation == "MatchId" and not fields.items(body, "MandatedSignerIds", where=where):
        raise bad_request(f"{where}.MandatedSignerIds.Required", "MatchId needs MandatedSignerIds")
    if validation == "NameAndBirthDate" and fields.integer(body, "MatchLevel", where=where) is None:
        raise bad_request(f"{where}.MatchLevel.Required", "NameAndBirthDate needs MatchLevel")
    return {"SigningType": canonical, "MandatedSignerValidation": validation}


def _check_locations(package: Package, stakeholders: list[Stakeholder]) -> None:
    taken: dict[str, str] = {}
    for holder in stakeholders:
        for actor in holder.actors:
            for location_id in actor.location_ids:
                location = package.find_location(location_id)
                if location is None:
                    raise not_found(f"Location.NotFound:{location_id}",
                                    f"no signing location {location_id} in the package")
                if location.id in taken and taken[location.id] != actor.id:
                    raise conflict(f"Location.AlreadyAssigned:{location_id}",
                                   "a signing location can belong to one signer only")
                taken[location.id] = actor.id


def _check_approvers_first(stakeholders: list[Stakeholder]) -> None:
    actors = [actor for holder in stakeholders for actor in holder.actors]
    approvers = [actor.order_index for actor in actors if actor.type == "Approver"]
    signers = [actor.order_index for actor in actors if actor.type == "Signer"]
    if approvers and signers and max(approvers) >= min(signers):
        raise bad_request("Process.Approver.OrderIndex", "approvers need a lower OrderIndex than every signer")


def v3_locations(body: dict[str, Any], where: str) -> list[str]:
    return [str(item) for item in fields.items(body, "LocationIds", where=where)]


def v31_locations(body: dict[str, Any], where: str) -> list[str]:
    entries = fields.items(body, "Locations", where=where)
    ids = []
    for entry in entries:
        if not isinstance(entry, dict) or not fields.text(entry, "Id"):
            raise bad_request(f"{where}.Locations.Invalid", "each location is an object with an Id")
        ids.append(str(fields.text(entry, "Id")))
    return ids or v3_locations(body, where)
