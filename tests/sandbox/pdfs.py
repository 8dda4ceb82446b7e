"""Builds small test PDFs: text markers, signature fields and text fields, made with reportlab and pypdf."""

from __future__ import annotations

import io

from pypdf import PdfWriter
from pypdf.generic import ArrayObject, DictionaryObject, FloatObject, NameObject, TextStringObject
from reportlab.pdfgen import canvas

A4 = (595.0, 842.0)


def make_pdf(pages: int = 1, markers: dict[int, list[str]] | None = None,
             signature_fields: dict[str, tuple[int, float, float, float, float]] | None = None,
             text_fields: dict[str, tuple[int, float, float, float, float]] | None = None,
             body_text: str = "Contract text") -> bytes:
    """A PDF; markers per 1-based page are written at (72, 700 - 20*i). Fields are (page, x1, y1, x2, y2)."""
    buffer = io.BytesIO()
    sheet = canvas.Canvas(buffer, pagesize=A4)
    for page in range(1, pages + 1):
        sheet.drawString(72, 780, f"{body_text} - page {page}")
        for index, marker in enumerate((markers or {}).get(page, [])):
            sheet.drawString(72, 700 - 20 * index, marker)
        sheet.showPage()
    sheet.save()
    if not signature_fields and not text_fields:
        return buffer.getvalue()
    writer = PdfWriter(clone_from=io.BytesIO(buffer.getvalue()))
    fields = ArrayObject()
    for name, (page, x1, y1, x2, y2), field_type in [
        *((n, r, "/Sig") for n, r in (signature_fields or {}).items()),
        *((n, r, "/Tx") for n, r in (text_fields or {}).items()),
    ]:
        widget = DictionaryObject({
            NameObject("/Type"): NameObject("/Annot"),
            NameObject("/Subtype"): NameObject("/Widget"),
            NameObject("/FT"): NameObject(field_type),
            NameObject("/T"): TextStringObject(name),
            NameObject("/Rect"): ArrayObject([FloatObject(v) for v in (x1, y1, x2, y2)]),
            NameObject("/F"): FloatObject(4),
        })
        reference = writer._add_object(widget)
        target = writer.pages[page - 1]
        if "/Annots" not in target:
            target[NameObject("/Annots")] = ArrayObject()
        annotations = target["/Annots"]
        assert isinstance(annotations, ArrayObject)
        annotations.append(reference)
        fields.append(reference)
    writer._root_object[NameObject("/AcroForm")] = DictionaryObject({NameObject("/Fields"): fields})
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()
