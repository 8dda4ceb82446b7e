"""The bulk send job (`signing-bulk/{job}/job.json`) and what one recipient row turns into.

A job is one package request per recipient: the job gives the documents, the package name template,
how the recipient signs, the co-signers and receivers who join every package, reminders and expiry;
each row of the recipients file gives the recipient. `package_request` puts the two together into the
same `PackageRequest` a manifest gives, so a bulk package is created, followed and archived like any
other. Field names are camelCase on the wire; unknown fields are refused, as in manifests.

`python -m shared.bulk.spec > shared/bulk/job.schema.json` writes the JSON schema.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, ValidationError, field_validator, model_validator

from shared.pipeline import routing
from shared.pipeline.spec import (
    MAX_LOCATIONS_PER_DOCUMENT,
    MAX_SIGNERS,
    DocumentSpec,
    PackageRequest,
    Reference,
    ReminderPolicy,
    SignerSpec,
    SigningLocation,
    SigningType,
    _Model,
)
from shared.storage import names

JOB_SCHEMA_VERSION = "1"
JOB_FILE = names.BULK_JOB_NAME
RECIPIENT_FILES = ("recipients.csv", "recipients.json")
JOB_ID_PATTERN = re.compile(names.BULK_JOB_ID_PATTERN)
PACKAGE_REF_PREFIX = "blk"
_TEMPLATE_FIELD = re.compile(r"\{([^{}]{1,100})\}")
# Column names as users write them, reduced to letters and digits, for the fields the app knows.
_KNOWN_COLUMNS = {
    "email": "email", "emailaddress": "email", "mail": "email",
    "firstname": "firstName", "givenname": "firstName",
    "lastname": "lastName", "surname": "lastName", "familyname": "lastName",
    "language": "language", "lang": "language",
    "phone": "phone", "phonenumber": "phone", "mobile": "phone",
    "id": "id",
}


def column_name(header: str) -> str:
    """A header reduced for matching: `E-mail`, `e_mail` and `EMAIL` are one column."""
    return re.sub(r"[^a-z0-9]", "", header.strip().lower())


def is_valid_job_id(job: str) -> bool:
    return bool(JOB_ID_PATTERN.match(job))


def package_ref_for_row(job: str, key: str) -> str:
    """The packageRef of a row: the same for the same job and key on every upload, so a row is sent once."""
    digest = hashlib.sha256(f"bulk\n{job}\n{key}".encode()).hexdigest()
    return f"{PACKAGE_REF_PREFIX}-{digest[:24]}"


def is_bulk_package_ref(ref: str) -> bool:
    return ref.startswith(PACKAGE_REF_PREFIX + "-")


class RecipientRole(_Model):
    """How the recipient of each row takes part: their place in the order, signing types and locations."""

    order: int = Field(default=1, ge=1, le=1000, description="The recipient's place in the signing order.")
    signing_types: list[SigningType] = Field(default_factory=lambda: ["Manual"], min_length=1, max_length=10,
                                             description="How the recipient may sign.")
    locations: list[SigningLocation] = Field(
        default_factory=list, max_length=MAX_LOCATIONS_PER_DOCUMENT,
        description="Where the recipient signs (markers or rectangles). None: the #SIGN1# marker or a default box.")


class BulkJobSpec(_Model):
    """A bulk send: one package per recipient row, each with the same documents."""

    schema_version: Literal["1"] = Field(description="Version of this schema; always \"1\".")
    name: Annotated[str, StringConstraints(min_length=1, max_length=300)] = Field(
        description="Package name template; {Column} is replaced by the row's value of that column, "
                    "e.g. \"Policy 2027 - {FirstName} {LastName}\".")
    documents: list[DocumentSpec] = Field(min_length=1, max_length=30,
                                          description="The documents of every package, by path in the job folder.")
    recipients: Annotated[str, StringConstraints(min_length=1, max_length=200)] = Field(
        default="recipients.csv", description="The recipients file in the job folder: .csv (UTF-8, with a header) "
                                              "or .json (an array of objects).")
    recipient: RecipientRole = Field(default_factory=RecipientRole, description="How each row's recipient signs.")
    others: list[SignerSpec] = Field(default_factory=list, max_length=MAX_SIGNERS - 1,
                                     description="Co-signers and receivers who join every package.")
    initiator: str | None = Field(default=None, description="Email of a registered portal user; default: the "
                                                             "DEFAULT_INITIATOR setting.")
    document_group_code: Annotated[str, StringConstraints(min_length=1, max_length=50)] | None = None
    expires_at: datetime | None = Field(default=None, description="Expiry, ISO-8601 with a time zone.")
    expiry_days: int | None = Field(default=None, ge=1, le=366, description="Expiry in days from creation.")
    reminders: ReminderPolicy | None = None
    subscribers: list[Annotated[str, StringConstraints(min_length=1, max_length=2048)]] = Field(
        default_factory=list, max_length=10, description="Webhook URLs that receive every package's events.")
    external_reference: Reference | None = Field(
        default=None, description="Your reference of the job; each package gets `{externalReference}/{row key}`.")

    @field_validator("recipients")
    @classmethod
    def _recipients_file(cls, value: str) -> str:
        if "/" in value or "\\" in value or value.startswith(".") or not value.lower().endswith((".csv", ".json")):
            raise ValueError("recipients names a .csv or .json file in the job folder (no folders)")
        return value

    @model_validator(mode="after")
    def _documents_by_path(self) -> BulkJobSpec:
        for index, document in enumerate(self.documents):
            if document.path is None:
                raise ValueError(f"documents[{index}] needs a path in the job folder")
        return self

    @property
    def template_fields(self) -> list[str]:
        return _TEMPLATE_FIELD.findall(self.name)


# ---------------------------------------------------------------------------------------------------
# Rows


class BadRow(Exception):
    """A recipient row that cannot become a package; the code and message go into the report."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def normalized_row(values: dict[str, Any]) -> dict[str, str]:
    """The row's values keyed by reduced column name (see `column_name`), as stripped text."""
    row: dict[str, str] = {}
    for header, value in values.items():
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise BadRow("row_invalid", f"column {str(header)[:50]!r} must hold text")
        row[column_name(str(header))] = str(value).strip()
    return row


def row_key(row: dict[str, str]) -> str:
    """The row's identity: its `id` column when given, else its e-mail address (case-insensitive)."""
    explicit = row.get("id", "")
    if explicit:
        return explicit[:200]
    return row.get("email", "").lower()


def _field(row: dict[str, str], name: str) -> str:
    for reduced, known in _KNOWN_COLUMNS.items():
        if known == name and row.get(reduced):
            return row[reduced]
    return ""


def render_name(template: str, row: dict[str, str]) -> str:
    missing = [field for field in _TEMPLATE_FIELD.findall(template) if not row.get(column_name(field))]
    if missing:
        raise BadRow("template_field_missing", f"the name template uses {{{missing[0]}}}, which this row has no "
                                               f"value for")
    # Plain replacement, never str.format: both the template and the values come from users.
    return _TEMPLATE_FIELD.sub(lambda match: row[column_name(match.group(1))], template)


def package_request(job: str, spec: BulkJobSpec, row: dict[str, str]) -> PackageRequest:
    """The package request of one row, or BadRow saying why there is none."""
    email = _field(row, "email")
    if not email:
        raise BadRow("email_missing", "the row has no e-mail address")
    first, last = _field(row, "firstName"), _field(row, "lastName")
    if not (first or last):
        raise BadRow("name_missing", "the row has neither a first nor a last name")
    key = row_key(row)
    signer: dict[str, Any] = {
        "name": f"{first} {last}".strip(), "email": email, "order": spec.recipient.order,
        # Both halves as given, so a last name of several words stays whole at Connective.
        **({"firstName": first, "lastName": last} if first and last else {}),
        "signingTypes": list(spec.recipient.signing_types),
        "locations": [location.to_json_dict() for location in spec.recipient.locations],
        "externalReference": key,
    }
    if _field(row, "phone"):
        signer["phone"] = _field(row, "phone")
    if _field(row, "language"):
        signer["language"] = _field(row, "language")
    wire = spec.to_json_dict()
    request: dict[str, Any] = {
        "schemaVersion": "1", "name": render_name(spec.name, row), "documents": wire["documents"],
        "signers": [signer, *wire.get("others", [])],
        **{name: wire[name] for name in ("initiator", "documentGroupCode", "expiresAt", "expiryDays", "reminders",
                                         "subscribers") if name in wire},
    }
    reference = f"{spec.external_reference or job}/{key}"
    request["externalReference"] = reference[:200]
    try:
        return PackageRequest.model_validate(request)
    except ValidationError as error:
        details = routing.validation_details(error)
        first_detail = details[0] if details else {"path": "", "message": "invalid"}
        path = "/" + str(first_detail["path"])
        code = "row_invalid"
        if path.startswith("/signers/0/email"):
            code = "email_invalid"
        elif path.startswith("/signers/0/name"):
            code = "name_invalid"
        elif path.startswith("/signers/0/phone"):
            code = "phone_invalid"
        elif path.startswith("/signers/0/language"):
            code = "language_unsupported"
        elif path == "/name":
            code = "name_template_invalid"
        where = path.replace("/signers/0/", "").lstrip("/") or "row"
        raise BadRow(code, f"{where}: {first_detail['message']}") from None


def json_schema() -> dict[str, Any]:
    schema = BulkJobSpec.model_json_schema(by_alias=True, mode="validation")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


if __name__ == "__main__":
    print(json.dumps(json_schema(), indent=2, sort_keys=True))
