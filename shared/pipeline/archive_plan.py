"""What an archive run writes for a package: its folder, each document's file names, and its ZIP member."""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass
from typing import Any

from shared.storage.packages import PackageRecord

PACKAGE_PROOF_NAME = "audit-proof.xml"
SUMMARY_NAME = "summary.json"
DOCUMENT_PROOF_SUFFIX = ".audit-proof.xml"
XML_TYPE = "application/xml"
JSON_TYPE = "application/json"
_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9._ -]+")
_EXTENSIONS = {"application/pdf": ".pdf", "application/xml": ".xml"}


@dataclass(frozen=True)
class PlannedDocument:
    document_id: str
    name: str
    content_type: str
    blob_name: str  # relative to the package folder
    proof_blob_name: str
    zip_name: str  # the member name Connective gives the document in the package ZIP
    location_ids: frozenset[str] = frozenset()


# ---------------------------------------------------------------------------------------------------
# Naming


def package_folder(record: PackageRecord) -> str:
    """`{yyyy}/{mm}/{packageRef}/`, from the row's creation time: a repeat months later hits the same names."""
    return f"{record.created_at:%Y}/{record.created_at:%m}/{record.ref}/"


def _safe_name(name: str, extension: str) -> str:
    stem = name[: -len(extension)] if extension and name.lower().endswith(extension) else name
    stem = _UNSAFE_NAME_CHARS.sub("_", stem).strip(" ._") or "document"
    return stem[:100]


def plan_documents(documents: list[dict[str, Any]]) -> list[PlannedDocument]:
    planned: list[PlannedDocument] = []
    zip_names: set[str] = set()
    for index, document in enumerate(documents, start=1):
        content_type = str(document.get("type") or "application/pdf")
        extension = _EXTENSIONS.get(content_type, ".bin")
        name = str(document.get("name") or document["document_id"])
        base = f"{index:02d}-{_safe_name(name, extension)}"
        planned.append(PlannedDocument(
            document_id=str(document["document_id"]), name=name, content_type=content_type,
            blob_name=base + extension, proof_blob_name=base + DOCUMENT_PROOF_SUFFIX,
            zip_name=_zip_member_name(name, extension, zip_names),
            location_ids=frozenset(str(i).lower() for i in document.get("location_ids") or ()),
        ))
    return planned


def _zip_member_name(name: str, extension: str, taken: set[str]) -> str:
    """The member name of a document in the package ZIP: its name plus extension, ` (n)` for repeats."""
    candidate, counter = name + extension, 1
    while candidate in taken:
        counter += 1
        candidate = f"{name} ({counter}){extension}"
    taken.add(candidate)
    return candidate

def match_members(documents: list[PlannedDocument], members: list[zipfile.ZipInfo]) -> dict[str, zipfile.ZipInfo]:
    """Pair documents with ZIP members: by the expected member name, then the rest by position."""
    by_name = {member.filename.rsplit("/", 1)[-1]: member for member in members}
    matched: dict[str, zipfile.ZipInfo] = {}
    for document in documents:
        member = by_name.pop(document.zip_name, None)
        if member is not None:
            matched[document.document_id] = member
    left_documents = [d for d in documents if d.document_id not in matched]
    left_members = [m for m in members if m.filename.rsplit("/", 1)[-1] in by_name]
    if left_documents and len(left_documents) == len(left_members):
        matched.update({d.document_id: m for d, m in zip(left_documents, left_members, strict=True)})
    return matched

