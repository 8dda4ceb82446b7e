"""PDF work with pypdf and reportlab: validation, finding signing locations, visible signature stamps.

Coordinates follow the API: points, origin at the top-left of the page. PDF itself counts from the
bottom-left, so every conversion goes through the page height.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from pypdf import PageObject, PdfReader, PdfWriter, apply_configuration
from pypdf.errors import PyPdfError
from pypdf.generic import ArrayObject, DictionaryObject
from reportlab.lib.colors import Color
from reportlab.pdfgen import canvas

from devtools.sandbox.clock import iso_z

MARKER_BOX = (160.0, 50.0)  # width, height of a location found from a text marker
MAX_PAGE_POINTS = 3.99 * 72 / 0.0254  # the documented 3.99 m page limit


class InvalidPdf(ValueError):
    """The bytes are not a usable PDF."""


@dataclass(frozen=True)
class Rect:
    page_number: int  # 1-based
    left: float
    top: float
    width: float
    height: float


@dataclass
class PdfInfo:
    page_sizes: list[tuple[float, float]]
    signature_fields: dict[str, Rect]  # empty /Sig fields, detected as locations
    all_fields: dict[str, Rect]  # any widget by its field name


# pypdf refuses streams over 75 MB by default, a guard against hostile files. The sandbox stands in for a
# service that takes large scanned documents (benchmarks send 100 MB), so it lifts the stream limits to
# 1 GB for its own reads and stamps.
_LARGE = 1_000_000_000
F = TypeVar("F", bound=Callable[..., object])
_LARGE_DOCUMENTS: dict[str, Any] = {
    "maximum_declared_stream_length": _LARGE,
    "zlib_maximum_output_length": _LARGE,
    "image_maximum_buffer_size": _LARGE,
}


def _large_documents(function: F) -> F:
    @functools.wraps(function)
    def wrapper(*args: object, **kwargs: object) -> object:
        with apply_configuration(**_LARGE_DOCUMENTS):
            return function(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


@_large_documents
def inspect_pdf(path: Path) -> PdfInfo:
    """Open and check a PDF; raises InvalidPdf with a readable reason."""
    # pypdf given a path reads the whole file into memory; given an open file it reads what it parses.
    with path.open("rb") as handle:
        if not handle.read(1024).lstrip().startswith(b"%PDF-"):
            raise InvalidPdf("the document is not a PDF (no %PDF- header)")
        try:
            reader = PdfReader(handle, strict=True)
            if reader.is_encrypted:
                raise InvalidPdf("encrypted PDFs are not accepted")
            page_sizes = []
            for page in reader.pages:
                box = page.mediabox
                width, height = float(box.width), float(box.height)
                if width <= 0 or height <= 0 or max(width, height) > MAX_PAGE_POINTS:
                    raise InvalidPdf("a page is empty or larger than 3.99 m")
                page_sizes.append((width, height))
            if not page_sizes:
                raise InvalidPdf("the PDF has no pages")
            all_fields, signature_fields = _widgets(reader, page_sizes)
        except InvalidPdf:
            raise
        except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError, OSError) as error:
            raise InvalidPdf(f"the PDF is damaged: {error}") from None
    return PdfInfo(page_sizes=page_sizes, signature_fields=signature_fields, all_fields=all_fields)


def _widgets(reader: PdfReader, page_sizes: list[tuple[float, float]]) -> tuple[dict[str, Rect], dict[str, Rect]]:
    all_fields: dict[str, Rect] = {}
    signature_fields: dict[str, Rect] = {}
    for index, page in enumerate(reader.pages):
        annotations = page.get("/Annots")
        if annotations is None:
            continue
        for reference in annotations.get_object():
            widget = reference.get_object()
            if not isinstance(widget, DictionaryObject) or widget.get("/Subtype") != "/Widget":
                continue
            parent = widget.get("/Parent")
            parent_object = parent.get_object() if parent is not None else None
            name = widget.get("/T") or (parent_object.get("/T") if parent_object is not None else None)
            field_type = widget.get("/FT") or (parent_object.get("/FT") if parent_object is not None else None)
            rect = widget.get("/Rect")
            if name is None or not isinstance(rect, ArrayObject):
                continue
            x1, y1, x2, y2 = (float(value) for value in rect)
            page_height = page_sizes[index][1]
            found = Rect(index + 1, min(x1, x2), page_height - max(y1, y2), abs(x2 - x1), abs(y2 - y1))
            all_fields[str(name)] = found
            signed = widget.get("/V") or (parent_object.get("/V") if parent_object is not None else None)
            if field_type == "/Sig" and signed is None:
                signature_fields[str(name)] = found
    return all_fields, signature_fields


@_large_documents
def find_marker(path: Path, marker: str, page_sizes: list[tuple[float, float]]) -> Rect | None:
    """The first place where the text marker is written; the location box starts there."""
    with path.open("rb") as handle:
        reader = PdfReader(handle)
        for index, page in enumerate(reader.pages):
            hits: list[tuple[float, float, float]] = []

            def visit(text: str, cm: list[float], tm: list[float], _font: object, size: float,
                      hits: list[tuple[float, float, float]] = hits) -> None:
                if marker in text:
                    x = tm[4] * cm[0] + tm[5] * cm[2] + cm[4]
                    y = tm[4] * cm[1] + tm[5] * cm[3] + cm[5]
                    hits.append((x, y, size or 12.0))

            page.extract_text(visitor_text=visit)
            if hits:
                x, baseline, size = hits[0]
                page_height = page_sizes[index][1]
                return Rect(index + 1, x, max(page_height - baseline - size, 0.0), *MARKER_BOX)
    return None


@dataclass(frozen=True)
class Stamp:
    rect: Rect
    signer: str
    signed_at: datetime
    signing_type: str


@_large_documents
def stamp_pdf(source: Path, target: Path, stamps: list[Stamp]) -> None:
    """Write `target`: the source plus, as an incremental update, a visible stamp per signature."""
    writer = PdfWriter(source, incremental=True)
    by_page: dict[int, list[Stamp]] = {}
    for stamp in stamps:
        by_page.setdefault(stamp.rect.page_number, []).append(stamp)
    for page_number, page_stamps in by_page.items():
        page = writer.pages[page_number - 1]
        width, height = float(page.mediabox.width), float(page.mediabox.height)
        page.merge_page(_overlay(width, height, page_stamps))
    with target.open("wb") as handle:
        writer.write(handle)


def _overlay(width: float, height: float, stamps: list[Stamp]) -> PageObject:
    buffer = io.BytesIO()
    sheet = canvas.Canvas(buffer, pagesize=(width, height))
    for stamp in stamps:
        rect = stamp.rect
        bottom = height - rect.top - rect.height
        sheet.setStrokeColor(Color(0.05, 0.25, 0.6))
        sheet.setFillColor(Color(0.85, 0.9, 1.0, alpha=0.6))
        sheet.rect(rect.left, bottom, rect.width, rect.height, stroke=1, fill=1)
        sheet.setFillColor(Color(0.05, 0.15, 0.45))
        font_size = max(5.0, min(10.0, rect.height / 4))
        sheet.setFont("Helvetica-Bold", font_size)
        sheet.drawString(rect.left + 3, bottom + rect.height - font_size - 2, f"Signed by {stamp.signer}")
        sheet.setFont("Helvetica", font_size * 0.85)
        sheet.drawString(rect.left + 3, bottom + rect.height - 2 * font_size - 3, iso_z(stamp.signed_at) or "")
        sheet.drawString(rect.left + 3, bottom + rect.height - 3 * font_size - 4, f"({stamp.signing_type})")
    sheet.save()
    buffer.seek(0)
    return PdfReader(buffer).pages[0]
