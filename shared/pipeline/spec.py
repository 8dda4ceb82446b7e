"""The package request: what a manifest, a routed inbox PDF or a POST /api/packages asks for.

One pydantic model serves every entry point, so a package means the same thing however it
arrives. Field names are camelCase on the wire (JSON) and snake_case in Python. Unknown fields are
rejected, so a misspelt key never silently does nothing. `manifest.schema.json` is generated from
`PackageRequest` (`python -m shared.pipeline.spec > shared/pipeline/manifest.schema.json`).

Enumerations follow Connective API v3 and are matched case-insensitively; values are stored in
their canonical spelling.
"""

from __future__ import annotations

import json
import re
import unicodedata
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, core_schema

SCHEMA_VERSION = "1"

DOCUMENT_LANGUAGES = ("en", "nl", "de", "fr", "es")
SIGNER_LANGUAGES = ("da", "de", "en", "es", "fi", "fr", "lv", "nb", "nl", "pl", "sv")
SIGNING_TYPES = ("Manual", "BeId", "ManualBeId", "SmsOtp", "MailOtp", "Server", "Idin", "BeLawyer", "Biometric",
                 "Itsme")
_OPENID_SIGNING_TYPE = re.compile(r"^openidconnect:([A-Za-z0-9_.-]{1,64})$", re.IGNORECASE)

# Validation context of a request read back from storage: only rules that hold for all time apply.
STORED = "stored"
MAX_DOCUMENTS = 30
MAX_SIGNERS = 50
MAX_LOCATIONS_PER_DOCUMENT = 30  # Connective's limit of signing fields per document
# Characters Connective refuses in package and document names.
_NAME_FORBIDDEN = re.compile(r"[/\\?%*:|'\"<>&\x00-\x1f\x7f]")
_PHONE = re.compile(r"^\+[1-9][0-9]{6,14}$")


def _canonical(value: str, allowed: tuple[str, ...], what: str) -> str:
    for option in allowed:
        if option.lower() == value.strip().lower():
            return option
    raise ValueError(f"unsupported {what} {value!r}; expected one of {', '.join(allowed)}")


def canonical_document_language(value: str) -> str:
    return _canonical(value, DOCUMENT_LANGUAGES, "document language")


def canonical_signer_language(value: str) -> str:
    return _canonical(value, SIGNER_LANGUAGES, "signer language")


def canonical_signing_type(value: str) -> str:
    openid = _OPENID_SIGNING_TYPE.match(value.strip())
    if openid:
        return f"OpenIdConnect:{openid.group(1)}"
    return _canonical(value, SIGNING_TYPES, "signing type")


# Characters that change how text around them is shown or read, besides the C0/C1 controls: line and
# paragraph separators and the bidirectional overrides (a name that reads backwards in a mail).
_LAYOUT_CONTROLS = frozenset("\u2028\u2029\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def is_control(character: str) -> bool:
    return unicodedata.category(character) == "Cc" or character in _LAYOUT_CONTROLS


def _no_controls(value: str) -> str:
    """Free text that reaches Connective (and its mails and portal) holds no control character of any kind."""
    for character in value:
        if is_control(character):
            raise ValueError(f"must not contain control characters (found U+{ord(character):04X})")
    return value


def _display_name(value: str) -> str:
    value = _no_controls(value.strip())
    if _NAME_FORBIDDEN.search(value):
        raise ValueError("must not contain / \\ ? % * : | ' \" < > & or control characters")
    return value


DisplayName = Annotated[str, StringConstraints(min_length=1, max_length=150), AfterValidator(_display_name)]
DocumentLanguage = Annotated[str, AfterValidator(canonical_document_language)]
SignerLanguage = Annotated[str, AfterValidator(canonical_signer_language)]
SigningType = Annotated[str, AfterValidator(canonical_signing_type)]
# The same rule for schema readers (Power Automate, editors); the validator gives the clearer message.
CONTROL_FREE_PATTERN = "^[^\\x00-\\x1f\\x7f-\\x9f\\u2028\\u2029\\u200e\\u200f\\u202a-\\u202e\\u2066-\\u2069]*$"


class _ControlFree:
    """Annotation: validated by `_no_controls`, shown in JSON schemas as CONTROL_FREE_PATTERN."""

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_after_validator_function(_no_controls, handler(source))

    def __get_pydantic_json_schema__(self, schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        json_schema = handler(schema)
        json_schema["pattern"] = CONTROL_FREE_PATTERN
        return json_schema


NoControls = _ControlFree()
Reference = Annotated[str, StringConstraints(min_length=1, max_length=200), NoControls]
Marker = Annotated[str, StringConstraints(min_length=1, max_length=100), NoControls]
# A blob path never reaches Connective, and blob names may hold any character: intake judges paths itself.
DocumentPath = Annotated[str, StringConstraints(min_length=1, max_length=1024)]
DocumentGroupCode = Annotated[str, StringConstraints(min_length=1, max_length=50), NoControls]
SubscriberUrl = Annotated[str, StringConstraints(min_length=1, max_length=2048), NoControls]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, populate_by_name=False,
                              str_strip_whitespace=True, frozen=False)

    def to_json_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class SigningLocation(_Model):
    """Where a signer signs: a text marker or form field id, or a rectangle in points from the top-left."""

    model_config = ConfigDict(title="Signing Location")

    # A flow sends text, so "0" names document 0 unless a document has the path "0".
    document: int | str = Field(
        default=0, title="Document", description="The document: its 0-based index in documents, or its path.")
    marker: Marker | None = Field(
        default=None, title="Marker", description="A text marker written in the PDF (e.g. #SIGN1#) or a form "
                                                  "field id.")
    page: int | None = Field(default=None, ge=-9999, le=9999, title="Page",
                             description="1-based page; negative counts from the last page (-1 = last).")
    left: float | None = Field(default=None, ge=0, le=12000, title="Left",
                               description="Distance of the signing field from the page's left edge, in points.")
    top: float | None = Field(default=None, ge=0, le=12000, title="Top",
                              description="Distance of the signing field from the page's top edge, in points.")
    width: float | None = Field(default=None, gt=0, le=12000, title="Width",
                                description="Width of the signing field, in points.")
    height: float | None = Field(default=None, gt=0, le=12000, title="Height",
                                 description="Height of the signing field, in points.")

    @model_validator(mode="after")
    def _marker_or_rectangle(self) -> SigningLocation:
        rectangle = (self.page, self.left, self.top, self.width, self.height)
        if self.marker is not None:
            if any(value is not None for value in rectangle):
                raise ValueError("give either a marker or page/left/top/width/height, not both")
        elif any(value is None for value in rectangle):
            raise ValueError("give a marker, or all of page, left, top, width and height")
        elif self.page == 0:
            raise ValueError("page is 1-based (or negative from the last page); 0 is not a page")
        return self


class ReminderPolicy(_Model):
    """Overrides the app-wide reminder settings for one package."""

    model_config = ConfigDict(title="Reminders")

    first_after_hours: int | None = Field(default=None, ge=1, le=24 * 365, title="First Reminder After Hours",
                                          description="Hours after sending before the first reminder.")
    every_hours: int | None = Field(default=None, ge=1, le=24 * 365, title="Reminder Interval Hours",
                                    description="Hours between reminders.")
    max_count: int | None = Field(default=None, ge=0, le=50, title="Maximum Reminders",
                                  description="At most this many reminders (0: none).")


class DocumentSpec(_Model):
    """One document: a blob path (manifests, API) or base64 content (API only). Exactly one of the two."""

    model_config = ConfigDict(title="Document")

    path: DocumentPath | None = Field(
        default=None, title="Blob Path", description="Blob path. In a manifest, relative to the batch folder.")
    content: str | None = Field(default=None, title="PDF Content", description="Base64 PDF bytes (HTTP API only).")
    name: DisplayName | None = Field(default=None, title="Document Name",
                                     description="Name shown to signers; default: the file name.")
    language: DocumentLanguage | None = Field(default=None, title="Document Language",
                                              description="Language of signature texts: en, nl, de, fr or es.")
    external_reference: Reference | None = Field(default=None, title="Document External Reference",
                                                 description="Your own reference of the document.")

    @model_validator(mode="after")
    def _path_or_content(self) -> DocumentSpec:
        if (self.path is None) == (self.content is None):
            raise ValueError("give exactly one of path and content")
        return self


class SignerSpec(_Model):
    """A person in the signing process. Signers act in order (lowest first; equal orders in parallel)."""

    model_config = ConfigDict(title="Signer")

    name: Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^[^<>]*$"),
                    NoControls] = Field(title="Signer Name", description="The signer's first and last name.")
    first_name: Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=r"^[^<>]*$"),
                          NoControls] | None = Field(
        default=None, title="Signer First Name",
        description="The first name as Connective shows it; default: name up to its last space.")
    last_name: Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=r"^[^<>]*$"),
                         NoControls] | None = Field(
        default=None, title="Signer Last Name",
        description="The last name as Connective shows it; default: name after its last space.")
    email: EmailStr = Field(title="Signer E-mail", description="The signer's e-mail address.")
    phone: str | None = Field(default=None, title="Signer Phone", description="E.164, for SMS OTP, e.g. +32477123456.")
    language: SignerLanguage | None = Field(default=None, title="Signer Language",
                                            description="Language of the signer's pages and mails.")
    order: int = Field(default=1, ge=1, le=1000, title="Signing Order",
                       description="Signers act lowest first; signers with the same order act in parallel.")
    type: Literal["Signer", "Receiver"] = Field(
        default="Signer", title="Role", description="Signer signs; Receiver only gets the signed documents.",
        json_schema_extra={"x-ms-enum-values": [{"value": "Signer", "displayName": "Signer (signs)"},
                                                {"value": "Receiver", "displayName": "Receiver (gets a copy)"}]})
    signing_types: list[SigningType] = Field(
        default_factory=lambda: ["Manual"], min_length=1, max_length=10, title="Signing Methods",
        description="How the signer may sign: Manual, SmsOtp, MailOtp, BeId, Itsme, OpenIdConnect:<name> and more.")
    locations: list[SigningLocation] = Field(
        default_factory=list, max_length=MAX_LOCATIONS_PER_DOCUMENT * MAX_DOCUMENTS, title="Signing Locations",
        description="Where this signer signs. None given: a default location on every document.")
    external_reference: Reference | None = Field(default=None, title="Signer External Reference",
                                                 description="Your own reference of the signer.")

    @field_validator("type", mode="before")
    @classmethod
    def _type_any_case(cls, value: Any) -> Any:
        if isinstance(value, str):
            for option in ("Signer", "Receiver"):
                if option.lower() == value.strip().lower():
                    return option
        return value

    @field_validator("phone")
    @classmethod
    def _e164(cls, value: str | None) -> str | None:
        if value is not None and not _PHONE.match(value):
            raise ValueError("phone must be E.164: + and 7 to 15 digits, no spaces")
        return value

    @model_validator(mode="after")
    def _receivers_do_not_sign(self) -> SignerSpec:
        if self.type == "Receiver" and self.locations:
            raise ValueError("a Receiver has no signing locations")
        return self

    @property
    def first_and_last_name(self) -> tuple[str, str]:
        """firstName and lastName when given (a last name of several words stays whole), else name split at
        its last space."""
        if self.first_name is not None or self.last_name is not None:
            return self.first_name or "", self.last_name or ""
        first, _, last = self.name.rpartition(" ")
        return (first, last) if first else (self.name, "")


class PackageRequest(_Model):
    """A signing package: its documents, its signers and how the package behaves."""

    model_config = ConfigDict(title="Package Request")

    schema_version: Literal["1"] = Field(title="Schema Version", description="Version of this schema; always \"1\".")
    name: DisplayName = Field(title="Package Name",
                              description="Package name shown in the portal and used as the ZIP name.")
    initiator: EmailStr | None = Field(
        default=None, title="Initiator E-mail",
        description="E-mail of a registered portal user; default: the DEFAULT_INITIATOR setting.")
    document_group_code: DocumentGroupCode | None = Field(
        default=None, title="Document Group Code", description="The Connective document group to file the package in.")
    external_reference: Reference | None = Field(
        default=None, title="External Reference",
        description="Your own reference; kept with the package and returned in events.")
    correlation_id: Reference | None = Field(
        default=None, title="Correlation ID", description="Connective CorrelationId (needs the audit-proof feature).")
    expires_at: datetime | None = Field(default=None, title="Expires At",
                                        description="Expiry, ISO-8601 with a time zone.")
    expiry_days: int | None = Field(default=None, ge=1, le=366, title="Expiry Days",
                                    description="Expiry in days from creation.")
    reminders: ReminderPolicy | None = Field(default=None, title="Reminders",
                                             description="Overrides the app-wide reminder settings for this package.")
    subscribers: list[SubscriberUrl] = Field(
        default_factory=list, max_length=10, title="Subscriber URLs",
        description="Webhook URLs that receive this package's events.")
    documents: list[DocumentSpec] = Field(min_length=1, max_length=MAX_DOCUMENTS, title="Documents",
                                          description="The PDF documents to sign, 1 to 30.")
    signers: list[SignerSpec] = Field(min_length=1, max_length=MAX_SIGNERS, title="Signers",
                                      description="The people who sign or receive the documents, 1 to 50.")

    @field_validator("expires_at")
    @classmethod
    def _aware_and_future(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("expiresAt needs a time zone, e.g. 2030-01-31T17:00:00Z")
        # "In the future" is a rule of submission. A stored request (STORED) was checked when it arrived;
        # time passing since (a backlog waiting for rate tokens) does not make it invalid.
        if value <= datetime.now(UTC) and not (info.context or {}).get(STORED):
            raise ValueError("expiresAt is in the past")
        return value.astimezone(UTC)

    @model_validator(mode="after")
    def _consistent(self) -> PackageRequest:
        if self.expires_at is not None and self.expiry_days is not None:
            raise ValueError("give expiresAt or expiryDays, not both")
        if not any(signer.type == "Signer" for signer in self.signers):
            raise ValueError("at least one signer must have type Signer")
        emails = [str(signer.email).lower() for signer in self.signers]
        if len(set(emails)) != len(emails):
            raise ValueError("each signer email may appear only once")
        paths = [document.path for document in self.documents if document.path is not None]
        if len(set(paths)) != len(paths):
            raise ValueError("each document path may appear only once")
        for signer in self.signers:
            for location in signer.locations:
                self.document_index(location.document)
        return self

    def document_index(self, reference: int | str) -> int:
        """The index of the document a location names (by index or by path; "2" is index 2 unless a
        document has the path "2")."""
        if isinstance(reference, str) and reference.isdigit() and reference not in (d.path for d in self.documents):
            reference = int(reference)
        if isinstance(reference, int):
            if 0 <= reference < len(self.documents):
                return reference
            raise ValueError(f"location names document {reference}, but there are {len(self.documents)}")
        for index, document in enumerate(self.documents):
            if document.path == reference:
                return index
        raise ValueError(f"location names document {reference!r}, which is not in documents")


def json_schema() -> dict[str, Any]:
    schema = PackageRequest.model_json_schema(by_alias=True, mode="validation")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


def render_json_schema() -> str:
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    print(render_json_schema(), end="")
