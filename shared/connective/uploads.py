"""Request bodies: JSON, and multipart/form-data streamed from a document source.

Add Document and Create Instant Package take the document either as base64 inside the JSON body or
as multipart parts `Data` (the JSON metadata) and `Document` (the bytes). Base64 JSON holds the whole
document in memory twice and a third larger, so only small byte strings go that way; streams and large
byte strings go as multipart, read from the source in small blocks while the request is sent.

A body must be sendable again for a retry. Bytes always are; a seekable stream is rewound; a callable
source is called again for a fresh stream. A stream that can do none of these is sent once: a retry
is possible only while not a byte of it has been read.
"""

from __future__ import annotations

import base64
import io
import json
import os
import queue
import threading
from collections.abc import Callable, Iterator
from typing import IO, Any, Protocol

from requests_toolbelt.multipart.encoder import MultipartEncoder

DocumentSource = bytes | bytearray | memoryview | IO[bytes] | Callable[[], IO[bytes]]

JSON_CONTENT_TYPE = "application/json; charset=utf-8"
# urllib3 reads a file-like body 16 KiB at a time, and each read runs the multipart encoder's Python
# code and a socket send: for a 100 MB document that is 6,400 rounds. An iterable body is sent in the
# blocks it yields.
SEND_BLOCK_BYTES = 1024 * 1024
# Blocks read from the document source while earlier ones are being sent: one blob range (8 MiB), so
# the next ranged GET runs while the previous range goes out, instead of the send waiting for it.
READ_AHEAD_BLOCKS = 8


class RequestBody(Protocol):
    def open(self) -> tuple[Any, dict[str, str]]:
        """The body to send for one attempt, and its headers."""
        ...

    def can_resend(self) -> bool:
        ...


class JsonBody:
    def __init__(self, payload: dict[str, Any]) -> None:
        self._data = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")

    def open(self) -> tuple[Any, dict[str, str]]:
        return self._data, {"Content-Type": JSON_CONTENT_TYPE}

    def can_resend(self) -> bool:
        return True


class _SizedReader:
    """Reads exactly `length` bytes of a stream; `len` (what the multipart encoder asks) is what is left.

    Given an opener, it opens the stream at the first read, that is while the request is being sent:
    opening a blob reads its first range, which must neither delay the request past its rate permit
    nor be spent on a request that is deferred for want of one.
    """

    def __init__(self, stream: IO[bytes] | Callable[[], IO[bytes]], length: int) -> None:
        self._stream: IO[bytes] | None = None if callable(stream) else stream
        self._opener = stream if callable(stream) else None
        self.len = length
        self.bytes_read = 0

    def read(self, size: int = -1) -> bytes:
        if self.len <= 0:
            return b""
        size = self.len if size is None or size < 0 else min(size, self.len)
        if self._stream is None:
            assert self._opener is not None
            self._stream = self._opener()
        chunk = self._stream.read(size)
        if not chunk:
            raise ValueError(f"the document stream ended {self.len} bytes before its declared length")
        self.len -= len(chunk)
        self.bytes_read += len(chunk)
        return chunk


def _stream_length(stream: IO[bytes]) -> int | None:
    """Bytes from the stream's position to its end, when the stream can tell."""
    try:
        if stream.seekable():
            position = stream.tell()
            end = stream.seek(0, os.SEEK_END)
            stream.seek(position)
            return end - position
    except (AttributeError, OSError, ValueError):
        pass
    return None


def _is_seekable(stream: IO[bytes]) -> bool:
    try:
        return bool(stream.seekable())
    except (AttributeError, ValueError):
        return False


class _EncodedBlocks:
    """The multipart encoder as an iterable of SEND_BLOCK_BYTES blocks, with the length requests sends as
    Content-Length. Deliberately without `read`: urllib3 prefers `read(16 KiB)` when a body has one.

    A thread reads up to READ_AHEAD_BLOCKS blocks ahead of the send. An error of the source (a blob
    that changed, a stream that ended early) is raised where the send takes the next block; a send
    that stops early stops the reader too.
    """

    def __init__(self, encoder: MultipartEncoder) -> None:
        self._encoder = encoder
        self.len = encoder.len

    def __iter__(self) -> Iterator[bytes]:
        blocks: queue.Queue[bytes | BaseException | None] = queue.Queue(maxsize=READ_AHEAD_BLOCKS)
        sending = threading.Event()
        sending.set()

        def hand_over(item: bytes | BaseException | None) -> bool:
            while sending.is_set():
                try:
                    blocks.put(item, timeout=0.1)
                    return True
                except queue.Full:
                    continue
            return False

        def read_ahead() -> None:
            try:
                while block := self._encoder.read(SEND_BLOCK_BYTES):
                    if not hand_over(block):
                        return
                hand_over(None)
            except BaseException as error:  # raised again by the sending side
                hand_over(error)

        threading.Thread(target=read_ahead, name="upload-read-ahead", daemon=True).start()
        try:
            while (item := blocks.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            sending.clear()


class MultipartBody:
    """`Data` (JSON) + `Document` (+ optional `Representation`) parts, encoded as they are sent."""

    def __init__(self, metadata: dict[str, Any], document: DocumentSource, *, length: int | None = None,
                 filename: str = "document.pdf", content_type: str = "application/pdf",
                 representation: bytes | None = None) -> None:
        self._metadata = json.dumps(metadata, separators=(",", ":"), ensure_ascii=False)
        self._filename = filename
        self._content_type = content_type
        self._representation = representation
        self._opener: Callable[[], IO[bytes]] | None = None
        self._stream: IO[bytes] | None = None
        self._start = 0
        if isinstance(document, bytes | bytearray | memoryview):
            buffer = bytes(document) if not isinstance(document, bytes) else document
            self._opener = lambda: io.BytesIO(buffer)
            length = len(buffer)
        elif callable(document):
            self._opener = document
        else:
            self._stream = document
            if _is_seekable(document):
                self._start = document.tell()
        if length is None and self._stream is not None:
            length = _stream_length(self._stream)
        if length is None:
            raise ValueError("the document's length is unknown: pass document_length with a stream that cannot seek")
        self.length = length
        self._reader: _SizedReader | None = None

    def open(self) -> tuple[Any, dict[str, str]]:
        stream: IO[bytes] | Callable[[], IO[bytes]]
        if self._opener is not None:
            stream = self._opener  # opened by the first read, once the request is on its way
        else:
            assert self._stream is not None
            if self._reader is not None:
                if _is_seekable(self._stream):
                    self._stream.seek(self._start)
                elif self._reader.bytes_read:
                    raise RuntimeError("the document stream was partly sent and cannot be rewound")
            stream = self._stream
        self._reader = _SizedReader(stream, self.length)
        fields: list[tuple[str, Any]] = [
            ("Data", (None, self._metadata, JSON_CONTENT_TYPE)),
            ("Document", (self._filename, self._reader, self._content_type)),
        ]
        if self._representation is not None:
            fields.append(("Representation", ("representation.pdf", io.BytesIO(self._representation),
                                              "application/pdf")))
        encoder = MultipartEncoder(fields=fields)
        return _EncodedBlocks(encoder), {"Content-Type": encoder.content_type}

    def can_resend(self) -> bool:
        if self._opener is not None or self._reader is None:
            return True
        assert self._stream is not None
        return _is_seekable(self._stream) or self._reader.bytes_read == 0


def document_body(metadata: dict[str, Any], document: DocumentSource, *, threshold_bytes: int,
                  length: int | None = None, filename: str = "document.pdf",
                  representation: bytes | None = None) -> RequestBody:
    """Base64 JSON for byte strings under the threshold, multipart for everything else."""
    content_type = str(metadata.get("DocumentType") or "application/pdf")
    if isinstance(document, bytes | bytearray | memoryview) and len(document) < threshold_bytes:
        payload = {**metadata, "Document": base64.b64encode(document).decode("ascii")}
        if representation is not None:
            payload["Representation"] = base64.b64encode(representation).decode("ascii")
        return JsonBody(payload)
    return MultipartBody(metadata, document, length=length, filename=filename, content_type=content_type,
                         representation=representation)
