"""Who signs a PDF dropped in `signing-inbox/`: blob metadata first, else the folder's routing profile.

Blob metadata keys (Azure compares them case-insensitively; values are ASCII, so non-ASCII text is
percent-encoded as UTF-8 and decoded here):

| key | value |
|---|---|
| `signers` | `Name <email>; Name2 <email2>` (signing order = listed order) or a JSON array of signers |
| `packagename` | package name (default: the file name without `.pdf`) |
| `language` | document language, also the signers' default language |
| `signingtype` | comma-separated signing types for every signer (default `Manual`) |
| `expirydays` | days until the package expires |
| `externalref` | your own reference |
| `initiator` | portal user who owns the package |
| `marker` | text marker template; `{n}` is the signer's position (default `#SIGN{n}#`) |
| `profile` | name of the routing profile to use instead of the folder's |

Profiles come from the `ROUTING_PROFILES` setting (JSON) or, when it is empty, the blob
`signing-config/routing-profiles.json`: `{"default": {...}, "hr/contracts": {...}}`. The folder of the
blob (`signing-inbox/hr/contracts/x.pdf` → `hr/contracts`, compared case-insensitively) names the
profile; the inbox root uses `default`.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any
from urllib.parse import unquote

from azure.core.exceptions import ResourceNotFoundError
from pydantic import EmailStr, Field, StringConstraints, ValidationError

from shared.config import Settings
from shared.pipeline.errors_report import Rejection
from shared.pipeline.spec import (
    DisplayName,
    DocumentLanguage,
    ReminderPolicy,
    SignerLanguage,
    SignerSpec,
    SigningType,
    _Model,
    is_control,
)
from shared.storage import names
from shared.storage.store import Store

PROFILES_BLOB = "routing-profiles.json"
DEFAULT_PROFILE = "default"
DEFAULT_MARKER_TEMPLATE = "#SIGN{n}#"
METADATA_KEYS = ("signers", "packagename", "language", "signingtype", "expirydays", "externalref", "initiator",
                 "marker", "profile")
_NAME_AND_EMAIL = re.compile(r"^\s*(?P<name>[^<>]*?)\s*<\s*(?P<email>[^<>\s]+)\s*>\s*$")


class RoutingProfile(_Model):
    """Defaults for the PDFs of one inbox folder."""

    signers: list[SignerSpec] = Field(default_factory=list, max_length=50)
    initiator: EmailStr | None = None
    document_group_code: Annotated[str, StringConstraints(min_length=1, max_length=50)] | None = None
    language: DocumentLanguage | None = None
    signer_language: SignerLanguage | None = None
    signing_types: list[SigningType] | None = None
    expiry_days: int | None = Field(default=None, ge=1, le=366)
    reminders: ReminderPolicy | None = None
    subscribers: list[str] = Field(default_factory=list, max_length=10)
    marker: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = None
    package_name_prefix: DisplayName | None = None


def folder_of(blob_name: str) -> str:
    folder, _, _ = blob_name.rpartition("/")
    return folder


def load_profiles(store: Store, settings: Settings) -> dict[str, RoutingProfile]:
    """Every profile, keyed by lower-cased folder. A broken configuration is an operator error: it raises."""
    text = settings.routing_profiles
    if not text.strip():
        try:
            text = store.clients.container(names.CONFIG_CONTAINER).download_blob(PROFILES_BLOB).readall().decode()
        except ResourceNotFoundError:
            return {}
    raw = json.loads(text)
    if not isinstance(raw, dict):
        raise ValueError("routing profiles must be a JSON object keyed by folder")
    return {str(folder).strip("/").lower(): RoutingProfile.model_validate(profile) for folder, profile in raw.items()}


def metadata_values(metadata: dict[str, str]) -> dict[str, str]:
    """Known metadata keys, lower-cased, values percent-decoded."""
    values: dict[str, str] = {}
    for key, value in metadata.items():
        lowered = key.lower()
        if lowered in METADATA_KEYS and value is not None:
            values[lowered] = unquote(value, errors="strict").strip()
    return values


def parse_signers(text: str) -> list[dict[str, Any]]:
    """Signers from the `signers` metadata value, as manifest signer objects (camelCase)."""
    if text.startswith("["):
        try:
            parsed = json.loads(text)
        except ValueError as error:
            raise Rejection("metadata_invalid", f"metadata 'signers' is not valid JSON: {error}") from None
        if not isinstance(parsed, list) or not all(isinstance(item, dict) for item in parsed):
            raise Rejection("metadata_invalid", "metadata 'signers' must be a JSON array of objects")
        return parsed
    signers = []
    for position, part in enumerate((p for p in text.split(";") if p.strip()), start=1):
        match = _NAME_AND_EMAIL.match(part)
        if not match:
            raise Rejection("signer_email_invalid",
                            f"signer {position} is not written as 'Name <email>': {part.strip()[:100]!r}")
        name = match.group("name") or match.group("email")
        signers.append({"name": name, "email": match.group("email"), "order": position})
    if not signers:
        raise Rejection("signers_missing", "metadata 'signers' names nobody")
    return signers


def select_profile(profiles: dict[str, RoutingProfile], blob_name: str, chosen: str | None) -> RoutingProfile | None:
    key = (chosen or folder_of(blob_name) or DEFAULT_PROFILE).strip("/").lower()
    if key in profiles:
        return profiles[key]
    if chosen:
        raise Rejection("profile_unknown", f"routing profile {chosen!r} does not exist")
    return None


def single_pdf_request(*, blob_name: str, metadata: dict[str, str], profiles: dict[str, RoutingProfile],
                       ) -> tuple[dict[str, Any], str]:
    """The package request (wire form, not yet validated) for one inbox PDF, and its marker template."""
    values = metadata_values(metadata)
    profile = select_profile(profiles, blob_name, values.get("profile"))
    if "signers" in values:
        signers = parse_signers(values["signers"])
    elif profile is not None and profile.signers:
        # Only what the profile says, so the profile's and the metadata's defaults still apply.
        signers = [signer.model_dump(mode="json", by_alias=True, exclude_unset=True) for signer in profile.signers]
    else:
        folder = folder_of(blob_name) or "(inbox root)"
        raise Rejection("signers_missing",
                        f"no 'signers' metadata and no routing profile with signers for folder {folder!r}")
    signing_types = values.get("signingtype")
    language = values.get("language") or (profile.language if profile else None)
    signer_language = values.get("language") or (profile.signer_language if profile else None)
    for signer in signers:
        if signing_types is not None and "signingTypes" not in signer:
            signer["signingTypes"] = [t for t in signing_types.split(",") if t.strip()]
        elif profile is not None and profile.signing_types and "signingTypes" not in signer:
            signer["signingTypes"] = list(profile.signing_types)
        if signer_language and "language" not in signer:
            signer["language"] = signer_language
    file_name = blob_name.rpartition("/")[2]
    stem = re.sub(r"\.pdf$", "", file_name, flags=re.IGNORECASE)
    name = values.get("packagename") or (f"{profile.package_name_prefix} {stem}"
                                          if profile and profile.package_name_prefix else stem)
    request: dict[str, Any] = {
        "schemaVersion": "1",
        "name": printable_name(name),
        "documents": [{"path": blob_name, "name": printable_name(stem),
                       **({"language": language} if language else {})}],
        "signers": signers,
    }
    if profile is not None:
        request.update({key: value for key, value in {
            "initiator": profile.initiator, "documentGroupCode": profile.document_group_code,
            "expiryDays": profile.expiry_days,
            "reminders": profile.reminders.to_json_dict() if profile.reminders else None,
            "subscribers": profile.subscribers or None,
        }.items() if value is not None})
    for key, field in (("initiator", "initiator"), ("externalref", "externalReference")):
        if key in values:
            request[field] = values[key]
    if "expirydays" in values:
        try:
            request["expiryDays"] = int(values["expirydays"])
        except ValueError:
            raise Rejection("metadata_invalid", f"metadata 'expirydays' is not a whole number: "
                                                f"{values['expirydays'][:20]!r}") from None
    marker = values.get("marker") or (profile.marker if profile else None) or DEFAULT_MARKER_TEMPLATE
    return request, marker


def printable_name(name: str) -> str:
    """File names may hold characters Connective refuses in names, and control characters; those become spaces."""
    cleaned = re.sub(r"[/\\?%*:|'\"<>&]", " ", "".join(" " if is_control(c) else c for c in name))
    return re.sub(r"\s+", " ", cleaned).strip()[:150] or "Document"


def validation_details(error: ValidationError) -> list[dict[str, Any]]:
    """pydantic errors as report details: a JSON path and a message each (never the input values)."""
    return [{"path": "/".join(str(part) for part in item["loc"]), "message": item["msg"], "type": item["type"]}
            for item in error.errors(include_url=False, include_input=False)]
