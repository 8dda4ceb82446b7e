"""Checks that a document is a usable PDF and finds where signers could sign in it.

Uploaded files are untrusted: a crafted PDF can make a parser recurse very deeply, loop, or eat
memory. pypdf therefore runs in a child process with a memory limit sized to the instance, a low
recursion limit, a budget of decoded stream bytes and a time limit, and at most
`CONCURRENT_CHECKS` children run at once per process, so a hostile document costs one rejected
input and never the worker. The budgets are counts, not clocks: a memory bomb is refused by the
decoded-bytes budget the same way on an idle machine and a loaded one (the time limit is only the
last resort, and it too rejects).

The document is never copied whole to the child or to disk. The child reads byte ranges on demand
from its parent over two pipes; the parent answers each with a `read_range(offset, length)` the
caller supplies (for a blob: a ranged download pinned to one ETag). pypdf needs the header, the
cross-reference data, the page tree and the content streams, so a 100 MB scan costs a few MB of
reads: image XObjects are recognised by their dictionary and never read (see `_skip_image_data`).
The child holds no storage credentials and can read nothing but this one document.

    python -m shared.pipeline.pdfcheck REQUEST_FD ANSWER_FD SIZE MEMORY_BYTES MARKERS_JSON

(started by `inspect_pdf`) prints one JSON object: the facts of the PDF, or the reason it is not acceptable.
The markers travel as one ASCII JSON argument, so no marker text (a NUL byte, a leading dash) can
break or steer the command line. Reasons carry a code and the exception type, never a parser's
message: pypdf's messages quote bytes of the document, which must not reach logs or reports.
"""

from __future__ import annotations

import io
import json
import os
import re
import struct
import subprocess
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

ANALYSIS_TIMEOUT_S = 60.0
# Checks running at once in one process (the blob trigger runs several invocations side by side); the
# others wait for a slot, so the children's memory limits add up to a known share of the instance.
CONCURRENT_CHECKS = 2
# Each child may use this share of the instance's memory, within these bounds: on a 2 GB Flex
# Consumption instance two children take at most 1 GB together and leave the rest to the host.
MEMORY_SHARE = 4
MIN_ANALYSIS_MEMORY_BYTES = 384 * 1024 * 1024
MAX_ANALYSIS_MEMORY_BYTES = 1024 * 1024 * 1024
# Stream bytes the child may inflate in all (content streams, forms; images are never inflated). Text
# pages take kilobytes each; a document that needs more is refused as too complex, whatever the clock says.
MAX_DECODED_BYTES = 64 * 1024 * 1024
MARKER_SCAN_MAX_PAGES = 200  # text markers beyond this page are not looked for
MAX_PAGE_POINTS = 3.99 * 72 / 0.0254  # Connective's page limit, 3.99 m
# The child reads the document in blocks and keeps the last few: pypdf jumps between the
# cross-reference data at the end and the objects it points to, and re-reads small pieces often.
READ_BLOCK_BYTES = 256 * 1024
CACHED_BLOCKS = 16
MAX_ANSWER_BYTES = 8 * 1024 * 1024  # the most the parent sends in one answer (a large read takes several)
# How much of an XObject is read to see its dictionary (an image's dictionary is a few hundred bytes).
XOBJECT_HEAD_BYTES = 16 * 1024
XOBJECT_SCAN_MAX_DEPTH = 4  # forms inside forms inside forms...: deeper ones are read as pypdf reads them

# (offset, length) -> exactly those bytes of the document
RangeReader = Callable[[int, int], bytes]
_REQUEST = struct.Struct("!QQ")  # child -> parent: offset, length
_ANSWER = struct.Struct("!q")  # parent -> child: byte count that follows, or -1 when the read failed


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


def instance_memory_bytes() -> int:
    """The memory this instance may use: the cgroup's limit when there is one, else the machine's."""
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            value = Path(path).read_text().strip()
        except OSError:
            continue
        if value.isdigit() and int(value) < 1 << 50:
            return int(value)
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 2 * 1024 * 1024 * 1024


def analysis_memory_bytes(instance_bytes: int | None = None) -> int:
    """The memory limit of one check child: a fixed share of the instance, within bounds."""
    share = (instance_bytes if instance_bytes is not None else instance_memory_bytes()) // MEMORY_SHARE
    return max(MIN_ANALYSIS_MEMORY_BYTES, min(MAX_ANALYSIS_MEMORY_BYTES, share))


_check_slots = threading.BoundedSemaphore(CONCURRENT_CHECKS)


def has_pdf_header(start: bytes) -> bool:
    return start.lstrip(b"\x00\t\r\n\x0c ").startswith(b"%PDF-")


def inspect_pdf(read_range: RangeReader, size: int, markers: list[str] | None = None,
                timeout_s: float = ANALYSIS_TIMEOUT_S) -> PdfFacts:
    """The facts of the `size`-byte PDF that `read_range` reads; raises PdfRejected when it is not acceptable.

    An exception of `read_range` (such as the blob changing under its ETag condition) is raised again
    here once the child has stopped, whatever the child made of the missing bytes.
    """
    if size == 0:
        raise PdfRejected("empty_document", "the document is empty")
    if not has_pdf_header(read_range(0, min(size, 1024))):
        raise PdfRejected("not_a_pdf", "the document is not a PDF (no %PDF- header)")
    with _check_slots:  # waiting for a slot is not part of the check's time limit
        return _run_child(read_range, size, markers or [], timeout_s)


def _run_child(read_range: RangeReader, size: int, markers: list[str], timeout_s: float) -> PdfFacts:
    request_read, request_write = os.pipe()
    answer_read, answer_write = os.pipe()
    try:
        command = [sys.executable, "-m", "shared.pipeline.pdfcheck", str(request_write), str(answer_read), str(size),
                   str(analysis_memory_bytes()), json.dumps(markers, ensure_ascii=True)]
        child = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                 stderr=subprocess.DEVNULL, pass_fds=(request_write, answer_read),
                                 cwd=Path(__file__).resolve().parents[2])
    except Exception:  # OSError: no child was started
        for descriptor in (request_read, request_write, answer_read, answer_write):
            os.close(descriptor)
        raise
    os.close(request_write)
    os.close(answer_read)
    server = _RangeServer(read_range, size, request_read, answer_write)
    server.start()
    try:
        output, _ = child.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        child.kill()
        child.communicate()
        raise PdfRejected("pdf_analysis_timeout", f"the PDF could not be analysed within {timeout_s:.0f} s") from None
    finally:
        server.join(timeout=5)
    if server.failure is not None:
        raise server.failure
    try:
        answer = json.loads(output.decode("utf-8").strip().splitlines()[-1])
    except (ValueError, IndexError):
        # No answer: the analyser died (memory limit, stack overflow). Only a hostile or broken file does that.
        raise PdfRejected("pdf_corrupt", "the PDF could not be analysed (the analyser stopped)") from None
    if not answer.get("ok"):
        raise PdfRejected(str(answer.get("code", "pdf_corrupt")), str(answer.get("message", "unreadable PDF")))
    return PdfFacts.from_json(answer["facts"])


class _RangeServer(threading.Thread):
    """Answers the child's range requests until it closes its end (it finished, died or was killed)."""

    def __init__(self, read_range: RangeReader, size: int, request_fd: int, answer_fd: int) -> None:
        super().__init__(name="pdfcheck-ranges", daemon=True)
        self._read_range = read_range
        self._size = size
        self._requests = os.fdopen(request_fd, "rb", buffering=0)
        self._answers = os.fdopen(answer_fd, "wb", buffering=0)
        self.failure: Exception | None = None

    def run(self) -> None:
        with self._requests, self._answers:
            try:
                while header := _read_exactly(self._requests, _REQUEST.size):
                    offset, length = _REQUEST.unpack(header)
                    length = max(0, min(length, MAX_ANSWER_BYTES, self._size - offset))
                    try:
                        data = self._read_range(offset, length) if length else b""
                    except Exception as error:  # re-raised by inspect_pdf; the child just learns it failed
                        self.failure = error
                        self._answers.write(_ANSWER.pack(-1))
                        return
                    self._answers.write(_ANSWER.pack(len(data)) + data)
            except (OSError, EOFError):
                pass  # the child went away mid-answer: inspect_pdf reports what it printed, if anything


def _read_exactly(source: IO[bytes], count: int) -> bytes:
    """`count` bytes from a pipe, or b"" when it is closed before the first of them."""
    data = bytearray()
    while len(data) < count:
        piece = source.read(count - len(data))
        if not piece:
            if data:
                raise EOFError(f"the pipe closed after {len(data)} of {count} bytes")
            return b""
        data += piece
    return bytes(data)


# ---------------------------------------------------------------------------------------------------
# The child process.


class _ParentRanges(io.RawIOBase):
    """The document as a read-only, seekable file whose bytes come from the parent, block by block.

    Small reads are served from the last CACHED_BLOCKS blocks; a read of a block or more (a content
    stream, say) is asked for as it is and not kept.
    """

    def __init__(self, request_fd: int, answer_fd: int, size: int) -> None:
        super().__init__()
        self._requests = os.fdopen(request_fd, "wb", buffering=0)
        self._answers = os.fdopen(answer_fd, "rb", buffering=0)
        self._size = size
        self._position = 0
        self._blocks: OrderedDict[int, bytes] = OrderedDict()

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        if base + offset < 0:
            raise OSError(f"seek to {base + offset}, before the start of the document")
        self._position = base + offset
        return self._position

    def readinto(self, buffer: Any) -> int:
        wanted = min(len(buffer), self._size - self._position)
        if wanted <= 0:
            return 0
        if wanted >= READ_BLOCK_BYTES:
            data = self._fetch(self._position, wanted)
        else:
            index, start = divmod(self._position, READ_BLOCK_BYTES)
            data = self._block(index)[start:start + wanted]
        buffer[:len(data)] = data
        self._position += len(data)
        return len(data)

    def _block(self, index: int) -> bytes:
        block = self._blocks.get(index)
        if block is None:
            offset = index * READ_BLOCK_BYTES
            block = self._fetch(offset, min(READ_BLOCK_BYTES, self._size - offset))
            self._blocks[index] = block
            if len(self._blocks) > CACHED_BLOCKS:
                self._blocks.popitem(last=False)
        else:
            self._blocks.move_to_end(index)
        return block

    def _fetch(self, offset: int, length: int) -> bytes:
        self._requests.write(_REQUEST.pack(offset, length))
        header = _read_exactly(self._answers, _ANSWER.size)
        count = _ANSWER.unpack(header)[0] if header else -1
        if count <= 0:
            raise OSError(f"the document could not be read at byte {offset}")
        return _read_exactly(self._answers, count)


_STREAM_KEYWORD = re.compile(rb">>\s*stream(?:\r\n|\r|\n)")


def _skip_image_data(reader: Any, resources: Any, depth: int = 0) -> None:
    """Let text extraction pass the page's images without reading their pixels.

    pypdf resolves every XObject a content stream draws (`Do`) to see whether it is a form with
    text, and resolving a stream object reads all of its data. For each image among `resources`'
    XObjects, its dictionary alone is parsed from the first bytes of the object and cached in the
    reader in its place, so extraction sees `/Subtype /Image` and moves on. Forms are resolved as
    usual (their text counts) and their own resources get the same treatment. Anything that does not
    parse cleanly is left for pypdf to resolve: this changes how much is read, never the result.
    """
    from pypdf.generic import DictionaryObject, IndirectObject

    resources = resources.get_object() if resources is not None else None
    xobjects = resources.get("/XObject") if isinstance(resources, DictionaryObject) else None
    xobjects = xobjects.get_object() if xobjects is not None else None
    if not isinstance(xobjects, DictionaryObject):
        return
    for reference in dict.values(xobjects):
        if not isinstance(reference, IndirectObject) or reference.pdf is not reader:
            continue
        if reader.cache_get_indirect_object(reference.generation, reference.idnum) is not None:
            continue
        head = _object_dictionary(reader, reference)
        if head is not None and head.get("/Subtype") == "/Image":
            reader.cache_indirect_object(reference.generation, reference.idnum, head)
        elif head is not None and head.get("/Subtype") == "/Form" and depth < XOBJECT_SCAN_MAX_DEPTH:
            form = reference.get_object()
            _skip_image_data(reader, form.get("/Resources") if isinstance(form, DictionaryObject) else None,
                             depth + 1)


def _object_dictionary(reader: Any, reference: Any) -> Any:
    """The dictionary of a stream object, parsed without its data; None when that cannot be done cleanly."""
    from pypdf.generic import DictionaryObject

    offset = reader.xref.get(reference.generation, {}).get(reference.idnum)
    if offset is None:  # in an object stream (never a stream object itself), or unknown
        return None
    stream = reader.stream
    position = stream.tell()
    try:
        stream.seek(offset)
        if reader.read_object_header(stream) != (reference.idnum, reference.generation):
            return None
        head = stream.read(XOBJECT_HEAD_BYTES)
        keyword = _STREAM_KEYWORD.search(head)
        if keyword is None:
            return None
        window = io.BytesIO(head[:keyword.start() + 2].lstrip())
        dictionary = DictionaryObject.read_from_stream(window, reader)
        return dictionary if window.tell() == len(window.getbuffer()) else None
    except Exception:  # any parse problem: pypdf reads the object the usual way
        return None
    finally:
        stream.seek(position)


class _DecodedBytesExceeded(Exception):
    pass


def _limit_decoding(max_bytes: int) -> None:
    """Count every byte pypdf inflates, and stop the analysis once `max_bytes` are used.

    pypdf bounds each stream on its own (75 MB by default) but not their sum: 25 streams of 70 MB each
    pass one by one and take gigabytes together. No pypdf setting bounds the sum, so its one decoding
    entry point is wrapped here; its per-stream limits are lowered to the same budget.
    """
    import pypdf
    import pypdf.filters as filters

    pypdf.overwrite_configuration(**{name: min(getattr(pypdf.get_configuration(), name), max_bytes) for name in (
        "zlib_maximum_output_length", "lzw_maximum_output_length", "run_length_maximum_output_length",
        "jbig2_maximum_output_length", "brotli_maximum_output_length", "array_based_stream_maximum_output_length",
        "maximum_declared_stream_length")})
    decode = filters.decode_stream_data
    used = 0

    def counted(stream: Any) -> bytes:
        nonlocal used
        data = decode(stream)
        used += len(data)
        if used > max_bytes:
            raise _DecodedBytesExceeded
        return data

    filters.decode_stream_data = counted  # pypdf looks it up at each call (StreamObject.get_data)


def _analyse(stream: IO[bytes], markers: list[str], max_decoded_bytes: int = MAX_DECODED_BYTES) -> PdfFacts:
    from pypdf import PdfReader
    from pypdf.errors import FileNotDecryptedError, LimitReachedError, PyPdfError

    _limit_decoding(max_decoded_bytes)
    too_complex = PdfRejected("pdf_too_complex", "the PDF needs more decoding than a document to sign should "
                                                 f"(over {max_decoded_bytes // 1048576} MB of streams)")
    try:
        reader = PdfReader(stream, strict=False)
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
    except (_DecodedBytesExceeded, LimitReachedError):
        raise too_complex from None
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError, OSError, AssertionError,
            ZeroDivisionError, OverflowError) as error:
        # The exception's type only: its message quotes bytes of the document.
        raise PdfRejected("pdf_corrupt", f"the PDF is damaged ({type(error).__name__})") from None
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
    for index, page in enumerate(reader.pages):
        if not wanted or index >= MARKER_SCAN_MAX_PAGES:
            break
        _skip_image_data(reader, page.get("/Resources"))
        text = page.extract_text() or ""
        for marker in list(wanted):
            if marker in text:
                found.append(marker)
                wanted.remove(marker)
    return [marker for marker in markers if marker in found]


def _limit_resources(memory_bytes: int) -> None:
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    except (ImportError, ValueError, OSError):  # not on this platform: the time limit still holds
        pass
    # pypdf parses nested arrays and dictionaries recursively; a low limit turns a hostile nesting
    # into a RecursionError long before the C stack is at risk.
    sys.setrecursionlimit(400)


def main(argv: list[str]) -> int:
    if len(argv) != 5:
        print("usage: python -m shared.pipeline.pdfcheck REQUEST_FD ANSWER_FD SIZE MEMORY_BYTES MARKERS_JSON",
              file=sys.stderr)
        return 2
    request_fd, answer_fd, size, memory_bytes = (int(value) for value in argv[:4])
    _limit_resources(memory_bytes)
    try:
        document = io.BufferedReader(_ParentRanges(request_fd, answer_fd, size), buffer_size=64 * 1024)
        facts = _analyse(document, [str(marker) for marker in json.loads(argv[4])])
        answer: dict[str, Any] = {"ok": True, "facts": facts.to_json()}
    except PdfRejected as rejected:
        answer = {"ok": False, "code": rejected.code, "message": str(rejected)}
    except MemoryError:
        answer = {"ok": False, "code": "pdf_too_large_to_analyse", "message": "the PDF needs too much memory to read"}
    print(json.dumps(answer))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
