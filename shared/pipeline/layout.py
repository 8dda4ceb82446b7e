"""Signing-field layout: where each signer signs each document (markers, signature fields, default boxes)."""

from __future__ import annotations

from typing import Any

from shared.pipeline.documents import StoredDocument
from shared.pipeline.errors_report import Rejection
from shared.pipeline.pdfcheck import MARKER_SCAN_MAX_PAGES
from shared.pipeline.spec import MAX_LOCATIONS_PER_DOCUMENT, PackageRequest

# Default signing box (points) where a document has neither a marker nor a signature field for a signer.
DEFAULT_BOX = (160.0, 50.0)
DEFAULT_MARGIN = 36.0
DEFAULT_GAP = 10.0


def marker_for(template: str, position: int) -> str:
    # Plain replacement, never str.format: the template comes from users.
    return template.replace("{n}", str(position))


def resolve_signing_fields(request: PackageRequest, documents: list[StoredDocument],
                           marker_template: str) -> list[list[dict[str, Any]]]:
    """Per document, the SigningFields to send, each labelled `s{signer}-{n}` so it maps back to its signer.

    A signer with explicit locations gets exactly those. A signer without any signs every document:
    on the text marker for their position (`#SIGN1#`, `#SIGN2#`, ...), else on the document's n-th empty
    signature field, else in a box at the bottom right of the last page (stacked upwards per signer).
    """
    per_document: list[list[dict[str, Any]]] = [[] for _ in documents]
    position = 0
    for signer_index, signer in enumerate(request.signers):
        if signer.type != "Signer":
            continue
        position += 1
        if signer.locations:
            for location in signer.locations:
                index = request.document_index(location.document)
                per_document[index].append(_explicit_field(location, documents[index]))
        else:
            for index, document in enumerate(documents):
                per_document[index].append(_default_field(document, marker_for(marker_template, position), position))
        for fields in per_document:
            for number, field in enumerate(fields):
                field.setdefault("Label", f"s{signer_index}-{number}")
    for index, fields in enumerate(per_document):
        if len(fields) > MAX_LOCATIONS_PER_DOCUMENT:
            raise Rejection("too_many_locations", f"document {documents[index].blob} would get {len(fields)} "
                                                  f"signing locations; Connective allows {MAX_LOCATIONS_PER_DOCUMENT}")
    return per_document


def _explicit_field(location: Any, document: StoredDocument) -> dict[str, Any]:
    if location.marker is not None:
        return {"MarkerOrFieldId": location.marker}
    page = location.page if location.page > 0 else document.pages + 1 + location.page
    if not 1 <= page <= document.pages:
        raise Rejection("location_invalid", f"{document.blob} has {document.pages} pages; "
                                            f"a location names page {location.page}")
    return {"PageNumber": page, "Left": _points(location.left), "Top": _points(location.top),
            "Width": _points(location.width), "Height": _points(location.height)}


def _default_field(document: StoredDocument, marker: str, position: int) -> dict[str, Any]:
    if marker in document.markers_found:
        return {"MarkerOrFieldId": marker}
    if len(document.signature_fields) >= position:
        return {"MarkerOrFieldId": document.signature_fields[position - 1]}
    width, height = DEFAULT_BOX
    page_width, page_height = document.last_page_size
    left = max(0.0, page_width - DEFAULT_MARGIN - width)
    top = max(0.0, page_height - DEFAULT_MARGIN - height - (position - 1) * (height + DEFAULT_GAP))
    return {"PageNumber": document.pages, "Left": _points(left), "Top": _points(top),
            "Width": _points(width), "Height": _points(height)}


def _points(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def check_explicit_markers(request: PackageRequest, documents: list[StoredDocument]) -> None:
    """A marker that names nothing in its document would make Connective refuse the package later."""
    for signer_index, signer in enumerate(request.signers):
        for location in signer.locations:
            if location.marker is None:
                continue
            document = documents[request.document_index(location.document)]
            if document.pages > MARKER_SCAN_MAX_PAGES:
                continue  # markers are looked for on the first pages only; Connective checks the rest
            if location.marker in document.markers_found or location.marker in document.signature_fields:
                continue
            raise Rejection("marker_not_found", f"signers[{signer_index}]: marker {location.marker!r} is neither "
                                                f"text nor an empty signature field in {document.blob}")
