"""Checks that a file is a usable PDF and finds where signers could sign in it.

Uploaded files are untrusted: a crafted PDF can make a parser recurse very deeply, loop, or eat
memory. pypdf therefore runs in a child process with a time limit, a memory limit and a low
recursion limit, so a hostile document costs one rejected input and never the worker.

    python -m shared.pipeline.pdfcheck FILE [MARKER ...]

prints one JSON object: the facts of the PDF, or the reason it is not acceptable.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ANALYSIS_TIMEOUT_S = 60.0
ANALYSIS_MEMORY_BYTES = 1536 * 1024 * 1024
MARKER_SCAN_MAX_PAGES = 200  # text markers beyond this page are not looked for
MARKER_SCAN_BUDGET_S = 15.0
MAX_PAGE_POINTS = 3.99 * 72 / 0.0254  # Connective's page limit, 3.99 m


@dataclass(frozen=True)
class PdfFacts:
    pages: int
    last_page_size: tuple[float, float]  # width, height in points
    signature_fields: list[str] = field(default_factory=list)  # empty /Sig fields, in document order
    markers_found: list[str] = field(default_factory=list)  # of the markers asked for

    def to_json(self) -> dict[str, Any]:
        return {"pages": self.pages, "lastPageSize": list(self.last_page_size),
                "signatureFields": self.signature_fields, "markersFound": self.markers_found}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PdfFacts:
        width, height = data["lastPageSize"]
        return cls(pages=int(data["pages"]), last_page_size=(float(width), float(height)),
                   signature_fields=list(data.get("signatureFields", [])),
                   markers_found=list(data.get("markersFound", [])))


class PdfRejected(ValueError):
    """The file is not an acceptable PDF. `code` is machine-readable, the message is for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def has_pdf_header(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(1024).lstrip(b"\x00\t\r\n\x0c ").startswith(b"%PDF-")


def inspect_pdf(path: Path, markers: list[str] | None = None,
                timeout_s: float = ANALYSIS_TIMEOUT_S) -> PdfFacts:
    """The facts of the PDF at `path`; raises PdfRejected when it is not acceptable."""
    if path.stat().st_size == 0:
        raise PdfRejected("empty_document", "the document is empty")
    if not has_pdf_header(path):
        raise PdfRejected("not_a_pdf", "the document is not a PDF (no %PDF- header)")
    command = [sys.executable, "-m", "shared.pipeline.pdfcheck", str(path), *(markers or [])]
    try:
        completed = subprocess.run(command, capture_output=True, timeout=timeout_s, check=False,
                                   cwd=Path(__file__).resolve().parents[2])
    except subprocess.TimeoutExpired:
        raise PdfRejected("pdf_analysis_timeout", f"the PDF could not be analysed within {timeout_s:.0f} s") from None
    try:
        answer = json.loads(completed.stdout.decode("utf-8").strip().splitlines()[-1])
    except (ValueError, IndexError):
        # No answer: the analyser died (memory limit, stack overflow). Only a hostile or broken file does that.
        raise PdfRejected("pdf_corrupt", "the PDF could not be analysed (the analyser stopped)") from None
    if not answer.get("ok"):
        raise PdfRejected(str(answer.get("code", "pdf_corrupt")), str(answer.get("message", "unreadable PDF")))
    return PdfFacts.from_json(answer["facts"])


# ---------------------------------------------------------------------------------------------------
# The child process.


def _analyse(path: Path, markers: list[str]) -> PdfFacts:
    from pypdf import PdfReader
    from pypdf.errors import FileNotDecryptedError, PyPdfError

    try:
        reader = PdfReader(path, strict=False)
        if reader.is_encrypted:
            raise PdfRejected("pdf_encrypted", "encrypted or password-protected PDFs are not accepted")
        page_count = len(reader.pages)
        if page_count == 0:
            raise PdfRejected("pdf_no_pages", "the PDF has no pages")
        sizes = []
        for page in reader.pages:
            width, height = float(page.mediabox.width), float(page.mediabox.height)
            if width <= 0 or height <= 0 or max(width, height) > MAX_PAGE_POINTS:
                raise PdfRejected("pdf_page_size", "a page is empty or larger than 3.99 m")
            sizes.append((width, height))
        signature_fields = _empty_signature_fields(reader)
        found = _find_markers(reader, markers)
    except PdfRejected:
        raise
    except FileNotDecryptedError:
        raise PdfRejected("pdf_encrypted", "encrypted or password-protected PDFs are not accepted") from None
    except RecursionError:
        raise PdfRejected("pdf_too_deep", "the PDF nests objects too deeply to be read safely") from None
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError, OSError, AssertionError,
            ZeroDivisionError, OverflowError) as error:
        raise PdfRejected("pdf_corrupt", f"the PDF is damaged: {type(error).__name__}: {str(error)[:200]}") from None
    return PdfFacts(pages=page_count, last_page_size=sizes[-1], signature_fields=signature_fields,
                    markers_found=found)


def _empty_signature_fields(reader: Any) -> list[str]:
    names: list[str] = []
    for page in reader.pages:
        annotations = page.get("/Annots")
        for reference in (annotations.get_object() if annotations is not None else []):
            widget = reference.get_object()
            if not hasattr(widget, "get") or widget.get("/Subtype") != "/Widget":
                continue
            parent = widget.get("/Parent")
            parent = parent.get_object() if parent is not None else {}
            name = widget.get("/T") or parent.get("/T")
            kind = widget.get("/FT") or parent.get("/FT")
            signed = widget.get("/V") or parent.get("/V")
            if name is not None and kind == "/Sig" and signed is None and str(name) not in names:
                names.append(str(name))
    return names


def _find_markers(reader: Any, markers: list[str]) -> list[str]:
    wanted = [marker for marker in markers if marker]
    found: list[str] = []
    deadline = time.monotonic() + MARKER_SCAN_BUDGET_S
    for index, page in enumerate(reader.pages):
        if not wanted or index >= MARKER_SCAN_MAX_PAGES or time.monotonic() > deadline:
            break
        text = page.extract_text() or ""
        for marker in list(wanted):
            if marker in text:
                found.append(marker)
                wanted.remove(marker)
    return [marker for marker in markers if marker in found]


def _limit_resources() -> None:
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (ANALYSIS_MEMORY_BYTES, ANALYSIS_MEMORY_BYTES))
    except (ImportError, ValueError, OSError):  # not on this platform: the time limit still holds
        pass
    # pypdf parses nested arrays and dictionaries recursively; a low limit turns a hostile nesting
    # into a RecursionError long before the C stack is at risk.
    sys.setrecursionlimit(400)


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python -m shared.pipeline.pdfcheck FILE [MARKER ...]", file=sys.stderr)
        return 2
    _limit_resources()
    try:
        facts = _analyse(Path(argv[0]), argv[1:])
        answer: dict[str, Any] = {"ok": True, "facts": facts.to_json()}
    except PdfRejected as rejected:
        answer = {"ok": False, "code": rejected.code, "message": str(rejected)}
    except MemoryError:
        answer = {"ok": False, "code": "pdf_too_large_to_analyse", "message": "the PDF needs too much memory to read"}
    print(json.dumps(answer))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
