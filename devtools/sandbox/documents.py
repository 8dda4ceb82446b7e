"""Documents: bytes kept on disk (never whole in memory twice), validation, and signing locations."""

from __future__ import annotations

import base64
import binascii
import hashlib
import shutil
import tempfile
import threading
import xml.etree.ElementTree as ElementTree
from datetime import datetime
from pathlib import Path
from typing import Any

from devtools.sandbox import fields
from devtools.sandbox.errors import bad_request, conflict
from devtools.sandbox.model import Document, Location, new_id
from devtools.sandbox.pdf import InvalidPdf, PdfInfo, Rect, find_marker, inspect_pdf

MAX_SIGNING_FIELDS = 30
CHUNK = 1024 * 1024
LANGUAGES = ("en", "nl", "de", "fr", "es")
DOCUMENT_TYPES = ("application/pdf", "application/xml")
TARGET_TYPES = ("Pdf", "PdfA1A", "PdfA2A")
PDF_ERROR_HANDLING = ("Ignore", "DetectWarn", "DetectFail", "DetectFixWarn", "DetectFixFail")


class DocumentStore:
    """A temp folder holding every uploaded and stamped file."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="connective-sandbox-"))
        self._lock = threading.Lock()

    def new_path(self, suffix: str = ".bin") -> Path:
        return self.root / f"{new_id()}{suffix}"

    def save_base64(self, encoded: str, what: str) -> Path:
        try:
            raw = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            try:
                raw = base64.b64decode("".join(encoded.split()), validate=True)
            except (binascii.Error, ValueError):
                raise bad_request(f"{what}.Invalid", f"{what} is not valid base64") from None
        path = self.new_path()
        path.write_bytes(raw)
        return path

    def clear(self) -> None:
        with self._lock:
            for child in self.root.iterdir():
                child.unlink(missing_ok=True)

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def digest(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            sha.update(chunk)
    return sha.hexdigest()


def build_document(body: dict[str, Any], content: Path, representation: Path | None, now: datetime,
                   max_document_mb: float, where: str = "Document") -> tuple[Document, PdfInfo | None]:
    """Validate a document's metadata and bytes; the caller adds locations and files it in a package."""
    name = fields.display_name(body, "DocumentName", required=True, where=where)
    document_type = fields.choice(body, "DocumentType", DOCUMENT_TYPES, where=where, default="application/pdf")
    language = fields.choice(body, "DocumentLanguage", LANGUAGES, where=where)
    fields.choice(body, "TargetType", TARGET_TYPES, where=where)
    fields.choice(body, "PdfErrorHandling", PDF_ERROR_HANDLING, where=where)
    if representation is not None:
        fields.choice(body, "RepresentationType", ("application/pdf",), where=where)
        if fields.text(body, "RepresentationType") is None:
            raise bad_request(f"{where}.RepresentationType.Required",
                              "RepresentationType is required with Representation")
    size = content.stat().st_size
    if size == 0:
        raise bad_request(f"{where}.Document.Empty", "the document is empty")
    if max_document_mb and size > max_document_mb * 1024 * 1024:
        raise bad_request(f"{where}.Document.TooLarge", f"the document is larger than {max_document_mb:g} MB")
    info: PdfInfo | None = None
    try:
        if document_type == "application/pdf":
            info = inspect_pdf(content)
        else:
            _check_xml(content, where)
            if representation is not None:
                info = inspect_pdf(representation)
    except InvalidPdf as error:
        raise bad_request(f"{where}.Document.Invalid", str(error)) from None
    document = Document(
        id=new_id(), name=name or "document", document_type=document_type or "application/pdf", path=content,
        size=size, sha256=digest(content), created=now, language=language,
        external_reference=fields.text(body, "ExternalDocumentReference", where=where),
        correlation_id=fields.text(body, "CorrelationId", where=where),
    )
    return document, info


def _check_xml(path: Path, where: str) -> None:
    if path.stat().st_size > 2_000_000 * 4:
        raise bad_request(f"{where}.Document.TooLarge", "XML documents are limited to 2 million characters")
    try:
        ElementTree.parse(path)
    except ElementTree.ParseError as error:
        raise bad_request(f"{where}.Document.Invalid", f"the XML document is not well-formed: {error}") from None


def locations_from_fields(document: Document, info: PdfInfo | None, signing_fields: list[dict[str, Any]],
                          where: str = "SigningFields") -> list[Location]:
    """One location per SigningField: a PDF field or text marker by id, or explicit coordinates."""
    if len(document.locations) + len(signing_fields) > MAX_SIGNING_FIELDS:
        raise bad_request(f"{where}.TooMany", f"at most {MAX_SIGNING_FIELDS} signing fields per document")
    if signing_fields and info is None:
        raise conflict("Document.NoPdfRepresentation", "signing fields need a PDF (or a PDF Representation)")
    created = []
    labels = {location.label for location in document.locations if location.label}
    for signing_field in signing_fields:
        rect = _rect(document, info, fields.fold(signing_field), where)  # type: ignore[arg-type]
        label = fields.text(fields.fold(signing_field), "Label", where=where)
        if label is not None and label in labels:
            raise bad_request(f"{where}.Label.Duplicate", f"label {label!r} is used twice in the document")
        if label is None:
            label = fields.text(fields.fold(signing_field), "MarkerOrFieldId", where=where)
        if label:
            labels.add(label)
        created.append(_location(document, rect, label))
    document.locations.extend(created)
    return created


def detected_locations(document: Document, info: PdfInfo | None) -> list[Location]:
    """Empty signature fields of the PDF become locations when the caller names none."""
    if info is None:
        return []
    found = [_location(document, rect, name) for name, rect in info.signature_fields.items()]
    document.locations.extend(found[:MAX_SIGNING_FIELDS])
    return found[:MAX_SIGNING_FIELDS]


def _location(document: Document, rect: Rect, label: str | None) -> Location:
    return Location(id=new_id(), document_id=document.id, label=label, page_number=rect.page_number,
                    left=rect.left, top=rect.top, width=rect.width, height=rect.height)


def _rect(document: Document, info: PdfInfo, signing_field: dict[str, Any], where: str) -> Rect:
    pdf_path = document.path if document.document_type == "application/pdf" else None
    marker = fields.text(signing_field, "MarkerOrFieldId", where=where)
    if marker is not None:
        if marker in info.all_fields:
            return info.all_fields[marker]
        found = find_marker(pdf_path, marker, info.page_sizes) if pdf_path is not None else None
        if found is None:
            raise conflict("Document.MarkerNotFound", f"no form field or text marker {marker!r} in the document")
        return found
    page_number = fields.integer(signing_field, "PageNumber", where=where)
    if page_number is None:
        raise bad_request(f"{where}.PageNumber.Required", "PageNumber (or MarkerOrFieldId) is required")
    pages = len(info.page_sizes)
    if page_number == 0 or abs(page_number) > pages:
        raise bad_request(f"{where}.PageNumber.Invalid", f"PageNumber must be 1..{pages} (or negative from the end)")
    if page_number < 0:
        page_number = pages + 1 + page_number
    left, top, width, height = (fields.number(signing_field, name, where=where)
                                for name in ("Left", "Top", "Width", "Height"))
    page_width, page_height = info.page_sizes[page_number - 1]
    if width <= 0 or height <= 0 or left + width > page_width + 0.5 or top + height > page_height + 0.5:
        raise bad_request(f"{where}.Rectangle.Invalid", "the signing field must have a size and lie on the page")
    return Rect(page_number, left, top, width, height)
