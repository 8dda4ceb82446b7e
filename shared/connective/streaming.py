"""Downloads that stream: a signed document, a package ZIP or an audit proof, chunk by chunk.

A `Download` is an answered request whose body has not been read. Iterate it (or `write_to` a
target with `write(bytes)`, such as a file or a blob upload) and close it; it is a context manager.
The whole file is never held in memory. A body that breaks off midway raises `TransportError`:
the chunks already written cannot be taken back, so the caller starts the download again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message
from email.utils import collapse_rfc2231_value
from typing import Protocol

import requests

from shared.connective.errors import TransportError


class Writable(Protocol):
    def write(self, data: bytes, /) -> object:
        ...


@dataclass(frozen=True)
class DownloadResult:
    bytes_written: int
    sha256: str
    content_type: str | None


def attachment_filename(content_disposition: str | None) -> str | None:
    """The file name a Content-Disposition header gives, in either form: the RFC 5987 `filename*=` (which
    carries non-ASCII names, and wins when both are present) or the plain `filename=`."""
    if not content_disposition:
        return None
    header = Message()
    header["Content-Disposition"] = content_disposition
    names = [value for key, value in header.get_params([], header="content-disposition") if key == "filename"]
    # get_params decodes `filename*=` into a (charset, language, value) triple; prefer it to the plain form.
    encoded = [value for value in names if isinstance(value, tuple)]
    chosen = encoded[0] if encoded else (names[0] if names else None)
    return collapse_rfc2231_value(chosen) or None if chosen is not None else None


class Download:
    def __init__(self, response: requests.Response, *, chunk_bytes: int, operation: str) -> None:
        self._response = response
        self._chunk_bytes = chunk_bytes
        self.operation = operation
        self.content_type: str | None = response.headers.get("Content-Type")
        length = response.headers.get("Content-Length")
        # Content-Length counts encoded bytes; with a Content-Encoding the decoded count differs.
        encoded = bool(response.headers.get("Content-Encoding"))
        self.content_length: int | None = int(length) if length and length.isdigit() and not encoded else None
        self.filename = attachment_filename(response.headers.get("Content-Disposition"))
        self.bytes_read = 0
        self._sha256 = hashlib.sha256()

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of the bytes read so far (of the whole file once the iteration has ended)."""
        return self._sha256.hexdigest()

    def __iter__(self) -> Iterator[bytes]:
        return self.iter_chunks()

    def iter_chunks(self) -> Iterator[bytes]:
        try:
            for chunk in self._response.iter_content(self._chunk_bytes):
                if chunk:
                    self.bytes_read += len(chunk)
                    self._sha256.update(chunk)
                    yield chunk
        except requests.RequestException as exc:
            raise TransportError(f"{self.operation}: download broke off after {self.bytes_read} bytes: "
                                 f"{type(exc).__name__}", operation=self.operation) from exc
        finally:
            self.close()
        if self.content_length is not None and self.bytes_read != self.content_length:
            raise TransportError(f"{self.operation}: download ended after {self.bytes_read} of "
                                 f"{self.content_length} bytes", operation=self.operation)

    def write_to(self, target: Writable) -> DownloadResult:
        for chunk in self.iter_chunks():
            target.write(chunk)
        return self.result()

    def result(self) -> DownloadResult:
        return DownloadResult(self.bytes_read, self.sha256, self.content_type)

    def close(self) -> None:
        self._response.close()

    def __enter__(self) -> Download:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
