"""Request and response models of API v3: snake_case in Python, PascalCase on the wire.

Requests are typed but permissive: every documented field is an optional attribute, and extra keys
given by the caller are sent as they are (use the wire name). Responses keep unknown fields
(`model_extra`), match field names case-insensitively (the server is .NET) and compare statuses
case-insensitively (the swagger's example says "DRAFT").
"""

from __future__ import annotations

import enum
import functools
from datetime import datetime
from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator
from pydantic.alias_generators import to_pascal


class _CaseInsensitiveEnum(enum.StrEnum):
    @classmethod
    def _missing_(cls, value: object) -> Any:
        if isinstance(value, str):
            for member in cls:
                if member.value.lower() == value.lower():
                    return member
        return None


class PackageStatus(_CaseInsensitiveEnum):
    DRAFT = "Draft"
    PENDING = "Pending"
    FINISHED = "Finished"
    REJECTED = "Rejected"
    REVOKED = "Revoked"
    EXPIRED = "Expired"
    FAILED = "Failed"

    @property
    def is_final(self) -> bool:
        return self in _FINAL_STATUSES


_FINAL_STATUSES = frozenset({PackageStatus.FINISHED, PackageStatus.REJECTED, PackageStatus.REVOKED,
                             PackageStatus.FAILED})


class ActorStatus(_CaseInsensitiveEnum):
    DRAFT = "Draft"
    AVAILABLE = "Available"
    IN_PROGRESS = "InProgress"
    FINISHED = "Finished"
    REJECTED = "Rejected"
    FAILED = "Failed"
    SKIPPED = "Skipped"


class ActorType(_CaseInsensitiveEnum):
    APPROVER = "Approver"  # v3.1 only
    SIGNER = "Signer"
    RECEIVER = "Receiver"


class StakeholderType(_CaseInsensitiveEnum):
    PERSON = "Person"
    PERSON_GROUP = "PersonGroup"
    CONTACT_GROUP = "ContactGroup"


class SortOrder(_CaseInsensitiveEnum):
    ASC = "ASC"
    DESC = "DESC"


_WIRE_NAMES = {
    # Names that the PascalCase rule would spell differently on the wire.
    "f2f_redirect_url": "F2FRedirectUrl",
    "f2f_signing_url": "F2FSigningUrl",
}


def _wire_name(name: str) -> str:
    return _WIRE_NAMES.get(name) or to_pascal(name)


class WireModel(BaseModel):
    model_config = ConfigDict(alias_generator=_wire_name, populate_by_name=True, extra="allow",
                              coerce_numbers_to_str=True, use_enum_values=False)

    def to_wire(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class ResponseModel(WireModel):
    """Base of responses: names match whatever their case, and a JSON null list reads as empty."""

    @model_validator(mode="before")
    @classmethod
    def _match_names_case_insensitively(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        names = _wire_names_by_lower(cls)
        return {names.get(key.lower(), key) if isinstance(key, str) else key: value for key, value in data.items()}

    @field_validator("*", mode="before")
    @classmethod
    def _null_list_is_empty(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None and info.field_name is not None:
            field = cls.model_fields.get(info.field_name)
            if field is not None and field.default_factory is list:
                return []
        return value


@functools.cache
def _wire_names_by_lower(model: type[BaseModel]) -> dict[str, str]:
    return {(field.alias or name).lower(): field.alias or name for name, field in model.model_fields.items()}


def _as_list(value: Any) -> Any:
    """The swagger's example has an object where a list belongs (Stakeholders[].Actors)."""
    if value is None:
        return []
    return [value] if isinstance(value, dict) else value


# ---------------------------------------------------------------------------------------------------
# Request parts


class SigningField(WireModel):
    """A signing location: by coordinates (points from the top-left) or by marker / form field id."""

    page_number: int | None = None
    width: str | None = None
    height: str | None = None
    left: str | None = None
    top: str | None = None
    marker_or_field_id: str | None = None
    label: str | None = None


class SigningTypeInfo(WireModel):
    """One allowed signing method of an actor (the wire object `SigningTypes[]`)."""

    signing_type: str
    mandated_signer_validation: str | None = None
    mandated_signer_ids: list[str] | None = None
    match_level: int | None = None
    commitment_types: list[str] | None = None
    signature_policy_id: str | None = None


class _ActorBase(WireModel):
    type: ActorType = ActorType.SIGNER
    order_index: int | None = None
    signing_types: list[SigningTypeInfo] | None = None
    phonenumber: str | None = Field(default=None, validation_alias=AliasChoices("Phonenumber", "PhoneNumber",
                                                                              "phonenumber"))
    redirect_url: str | None = Field(default=None, validation_alias=AliasChoices("RedirectUrl", "RedirectURL",
                                                                                "redirect_url"))
    send_notifications: bool | None = None
    user_roles: list[str] | None = None
    legal_notice_code: str | None = None
    legal_notice_text: str | None = Field(default=None, validation_alias=AliasChoices(
        "LegalNoticeText", "LegalNoticetext", "legal_notice_text"))


class Actor(_ActorBase):
    """An actor of Create Instant Package (`signing_fields`), or of Set Process Information (`location_ids`)
    when given to `SetProcessRequest`, which sends it as a `ProcessActor`."""

    location_ids: list[str] | None = None
    signing_fields: list[SigningField] | None = None


class _FromActor(WireModel):
    @model_validator(mode="before")
    @classmethod
    def _from_actor(cls, data: Any) -> Any:
        # An Actor (or Stakeholder) built by the caller becomes this operation's own form.
        return data.model_dump(by_alias=True, exclude_none=True) if isinstance(data, WireModel) else data


# Fields that an operation's own schema in the connector's swagger does not have are left out of its
# body (`exclude=True`): Create Instant Package places signers on inline SigningFields, Set Process
# Information on LocationIds, and v3 puts a phone number on the actor, not on the person.


class InstantActor(Actor, _FromActor):
    """An actor of Create Instant Package: on inline `signing_fields`."""

    location_ids: list[str] | None = Field(default=None, exclude=True)


class ProcessActor(Actor, _FromActor):
    """An actor of Set Process Information v3, spelt as that operation's own schema in the connector's
    swagger spells it: `RedirectURL` and `LegalNoticetext` (the shared Request.Actor and Create Instant
    Package say `RedirectUrl` and `LegalNoticeText`). The working connector sends these spellings."""

    signing_fields: list[SigningField] | None = Field(default=None, exclude=True)
    redirect_url: str | None = Field(default=None, serialization_alias="RedirectURL", validation_alias=AliasChoices(
        "RedirectUrl", "RedirectURL", "redirect_url"))
    legal_notice_text: str | None = Field(default=None, serialization_alias="LegalNoticetext",
                                          validation_alias=AliasChoices("LegalNoticeText", "LegalNoticetext",
                                                                        "legal_notice_text"))


class LocationRef(WireModel):
    """A v3.1 signer's location, with an optional legal notice that overrides the actor's."""

    id: str
    legal_notice_code: str | None = None
    legal_notice_text: str | None = None


class ActorV31(_ActorBase):
    """A v3.1 actor: Approver, Signer (on `locations`) or Receiver."""

    locations: list[LocationRef] | None = None
    redirect_type: str | None = None  # AfterSession | AfterCompletion | AfterDelay | Immediately


class _PersonDetails(WireModel):
    first_name: str | None = None
    last_name: str | None = None
    language: str | None = None
    birth_date: str | None = None
    external_stakeholder_reference: str | None = None
    phonenumber: str | None = None


class Person(_PersonDetails):
    email_address: str


class Stakeholder(Person):
    """A person of the v3 process (and of Create Instant Package)."""

    actors: list[Actor] = Field(default_factory=list)


class ProcessStakeholder(Person, _FromActor):
    """A person of Set Process Information v3: its actors go out in that operation's spellings."""

    phonenumber: str | None = Field(default=None, exclude=True)
    actors: list[ProcessActor] = Field(default_factory=list)


class InstantStakeholder(Person, _FromActor):
    """A person of Create Instant Package."""

    phonenumber: str | None = Field(default=None, exclude=True)
    actors: list[InstantActor] = Field(default_factory=list)


class StakeholderV31(_PersonDetails):
    """A v3.1 stakeholder: a Person (person fields), a PersonGroup (`persons`) or a ContactGroup (code)."""

    type: StakeholderType = StakeholderType.PERSON
    email_address: str | None = None
    person_group_name: str | None = None
    persons: list[Person] | None = None
    contact_group_code: str | None = None
    actors: list[ActorV31] = Field(default_factory=list)


# ---------------------------------------------------------------------------------------------------
# Requests


class PackageOptions(WireModel):
    """Fields shared by Create Package and Create Instant Package."""

    initiator: str | None = None
    call_back_url: str | None = None
    notification_call_back_url: str | None = None
    correlation_id: str | None = None
    document_group_code: str | None = None
    theme_code: str | None = None
    download_unsigned_files: bool | None = None
    reassign_enabled: bool | None = None
    action_url_expiration_period_in_days: int | None = None
    expiry_timestamp: datetime | None = None
    external_package_reference: str | None = None
    external_package_data: str | None = None
    f2f_redirect_url: str | None = None


class CreatePackageRequest(PackageOptions):
    initiator: str
    package_name: str


class DocumentOptions(WireModel):
    """Metadata of a document (Add Document; also part of Create Instant Package). The bytes go separately."""

    document_name: str | None = None
    document_language: str | None = None
    document_type: str | None = None
    external_document_reference: str | None = None
    pdf_error_handling: str | None = None
    target_type: str | None = None
    representation_type: str | None = None


class AddDocumentRequest(DocumentOptions):
    document_name: str
    correlation_id: str | None = None
    signing_fields: list[SigningField] | None = None


class CreateInstantPackageRequest(DocumentOptions, PackageOptions):
    initiator: str
    document_name: str
    document_type: str | None = Field(default=None, exclude=True)  # not in this operation's schema
    signing_template_code: str | None = None
    stakeholders: list[InstantStakeholder] | None = None


class SetProcessRequest(WireModel):
    stakeholders: list[ProcessStakeholder]


class SetProcessV31Request(WireModel):
    stakeholders: list[StakeholderV31]


class ExternalProofRequest(WireModel):
    location_id: str
    name: str | None = None
    type: str | None = None
    description: str | None = None
    content: str | None = None
    ip_address: str | None = None


# ---------------------------------------------------------------------------------------------------
# Responses


class CreatedPackage(ResponseModel):
    package_id: str
    creation_timestamp: datetime | None = None


class Location(ResponseModel):
    id: str
    label: str | None = None
    page_number: int | None = None


class AddedDocument(ResponseModel):
    document_id: str
    creation_timestamp: datetime | None = None
    locations: list[Location] = Field(default_factory=list)


class DocumentLocations(ResponseModel):
    document_id: str
    external_document_reference: str | None = None
    locations: list[Location] = Field(default_factory=list)


class SigningLocations(ResponseModel):
    documents: list[DocumentLocations] = Field(default_factory=list)


class PackageDocument(ResponseModel):
    document_id: str
    external_document_reference: str | None = None
    document_name: str | None = None
    document_type: str | None = None
    locations: list[Location] = Field(default_factory=list)


class ActionUrl(ResponseModel):
    email_address: str | None = None
    url: str | None = None


class ActorLocation(ResponseModel):
    id: str
    used_signing_type: str | None = Field(default=None, validation_alias=AliasChoices(
        "UsedSigningType", "UserSigningType", "used_signing_type"))


# Unknown enum values (newer API versions, the swagger's "asd") are kept as plain strings.


class ActorState(ResponseModel):
    actor_id: str
    type: ActorType | str | None = Field(default=None, union_mode="left_to_right")
    actor_status: ActorStatus | str | None = Field(default=None, union_mode="left_to_right")
    action_url: str | None = None
    action_urls: list[ActionUrl] = Field(default_factory=list)
    completed_by: str | None = None
    completed_timestamp: datetime | None = None
    reason: str | None = None
    locations: list[ActorLocation] = Field(default_factory=list)


class StakeholderState(ResponseModel):
    stakeholder_id: str | None = None
    type: StakeholderType | str | None = Field(default=None, union_mode="left_to_right")
    email_address: str | None = None
    person_group_name: str | None = None
    contact_group_code: str | None = None
    external_stakeholder_reference: str | None = None
    actors: list[ActorState] = Field(default_factory=list)

    @field_validator("actors", mode="before")
    @classmethod
    def _actors_as_list(cls, value: Any) -> Any:
        return _as_list(value)


class PackageInfo(ResponseModel):
    """Get Package Status (and Set Package Status) answer."""

    package_status: PackageStatus
    package_name: str | None = None
    creation_timestamp: datetime | None = None
    initiator: str | None = None
    expiry_timestamp: datetime | None = None
    external_package_reference: str | None = None
    f2f_signing_url: str | None = None
    package_documents: list[PackageDocument] = Field(default_factory=list)
    stakeholders: list[StakeholderState] = Field(default_factory=list)

    def actors(self) -> list[ActorState]:
        return [actor for stakeholder in self.stakeholders for actor in stakeholder.actors]


class InstantPackage(PackageInfo):
    """Create Instant Package answer: the package status plus its id and any warnings."""

    package_id: str
    package_status: PackageStatus = PackageStatus.PENDING
    warnings: list[Any] = Field(default_factory=list)


class PackageListItem(ResponseModel):
    id: str
    package_status: PackageStatus | str | None = Field(default=None, union_mode="left_to_right")
    external_package_reference: str | None = None


class PackageList(ResponseModel):
    continuation_token: str | None = None
    max_quantity: int | None = None
    total: int | None = None
    items: list[PackageListItem] = Field(default_factory=list)
