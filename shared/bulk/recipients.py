"""Reading a recipients file as a stream, row by row, from any byte offset.

A bulk send reads its recipients in steps (one `bulk-feed` message each), so the reader must start
where the last step stopped and say where each row ends. Neither the csv module nor json can tell a
byte offset, so records are cut here by hand and each one is parsed by the standard library:

- CSV: a record ends at a line break outside quotes. With RFC 4180 quoting ("" inside a quoted field),
  that is the first line break after which the number of `"` read so far is even.
- JSON: an array of objects; each element is decoded with `json.JSONDecoder.raw_decode` from a
  buffer that holds at most one element (plus one read chunk).

Memory stays flat whatever the file size: one chunk and one record at a time.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

MAX_RECORD_BYTES = 64 * 1024
_BOM = codecs.BOM_UTF8


class RecipientsUnreadable(Exception):
    """The rest of the file cannot be read (broken quoting, not JSON); the code and message say why."""

    def __init__(self, code: str, message: str, line: int) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.line = line


@dataclass
class RawRow:
    line: int  # CSV: line number of the record's first line (the header is line 1); JSON: 1-based item
    start: int  # byte offset of the record
    end: int  # byte offset just past it: where the next read starts
    next_line: int  # what the next read passes as its first line (CSV) or item number (JSON)
    values: dict[str, Any] = field(default_factory=dict)
    error: str | None = None  # the record could not be parsed: why


# ---------------------------------------------------------------------------------------------------
# CSV


def _csv_records(chunks: Iterable[bytes], start: int,
                 first_line: int) -> Iterator[tuple[int, int, int, bytes, int]]:
    """(line, start, end, record bytes, next line) of each record; a record may span several lines."""
    buffer = bytearray()
    record_start, offset, line = start, start, first_line
    record_line, quotes, scanned = first_line, 0, 0
    for chunk in chunks:
        buffer += chunk
        while True:
            newline = buffer.find(b"\n", scanned)
            if newline < 0:
                quotes += buffer.count(b'"', scanned)
                scanned = len(buffer)
                if len(buffer) > MAX_RECORD_BYTES:
                    raise RecipientsUnreadable("record_too_long", f"the record at line {record_line} is longer than "
                                               f"{MAX_RECORD_BYTES} bytes (a quote left open?)", record_line)
                break
            quotes += buffer.count(b'"', scanned, newline)
            scanned = newline + 1
            line += 1
            if quotes % 2:
                continue  # the line break is inside a quoted field
            record = bytes(buffer[:scanned])
            offset = record_start + len(record)
            yield record_line, record_start, offset, record, line
            del buffer[:scanned]
            record_start, record_line, quotes, scanned = offset, line, 0, 0
    if buffer.strip():
        if (quotes + buffer.count(b'"', scanned)) % 2:
            raise RecipientsUnreadable("quote_not_closed", f"a quoted field opened at line {record_line} is never "
                                       f"closed", record_line)
        yield record_line, record_start, record_start + len(buffer), bytes(buffer), line + 1


def _cells(record: bytes) -> list[str]:
    text = record.decode("utf-8")  # UnicodeDecodeError: the caller reports the row
    rows = list(csv.reader(io.StringIO(text, newline=""), strict=True))
    return rows[0] if rows else []


def read_csv_header(chunks: Iterable[bytes]) -> tuple[list[str], int]:
    """The header's columns and the byte offset of the first data row."""
    for _line, _start, end, record, _next in _csv_records(chunks, 0, 1):
        if record.startswith(_BOM):
            record = record[len(_BOM):]
        try:
            columns = [cell.strip() for cell in _cells(record)]
        except (UnicodeDecodeError, csv.Error) as error:
            raise RecipientsUnreadable("header_unreadable", f"the header line is not UTF-8 CSV: {error}", 1) from None
        if not any(columns):
            raise RecipientsUnreadable("header_missing", "the first line, the header, is empty", 1)
        return columns, end
    raise RecipientsUnreadable("recipients_empty", "the recipients file is empty", 1)


def read_csv_rows(chunks: Iterable[bytes], columns: list[str], start: int, first_line: int) -> Iterator[RawRow]:
    """Rows from `start` (which must be a record boundary), each a dict header → value."""
    for line, record_start, end, record, next_line in _csv_records(chunks, start, first_line):
        row = RawRow(line=line, start=record_start, end=end, next_line=next_line)
        if not record.strip():
            row.error = "blank"  # a blank line: the caller moves past it without a report line
            yield row
            continue
        try:
            cells = _cells(record)
        except UnicodeDecodeError:
            row.error = "the row is not UTF-8 text"
        except csv.Error as error:
            row.error = f"the row is not valid CSV: {error}"
        else:
            if len(cells) > len(columns) and any(cell.strip() for cell in cells[len(columns):]):
                row.error = f"the row has {len(cells)} cells; the header has {len(columns)} columns"
            else:
                row.values = {column: cells[index] if index < len(cells) else ""
                              for index, column in enumerate(columns) if column}
        yield row


# ---------------------------------------------------------------------------------------------------
# JSON


class _JsonCursor:
    """Decoded text from the byte stream, with the byte offset of its first character."""

    def __init__(self, chunks: Iterable[bytes], start: int) -> None:
        self._chunks = iter(chunks)
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self.text = ""
        self.offset = start  # byte offset of self.text[0]
        self.eof = False

    def more(self) -> bool:
        if self.eof:
            return False
        try:
            chunk = next(self._chunks)
        except StopIteration:
            self.text += self._decoder.decode(b"", final=True)
            self.eof = True
            return True
        self.text += self._decoder.decode(chunk)
        return True

    def consume(self, characters: int) -> None:
        self.offset += len(self.text[:characters].encode("utf-8"))
        self.text = self.text[characters:]

    def skip(self, allowed: str) -> None:
        while True:
            stripped = self.text.lstrip(allowed)
            self.consume(len(self.text) - len(stripped))
            if self.text or not self.more():
                return


def json_array_start(chunks: Iterable[bytes]) -> int:
    """The byte offset just past the opening `[` of the recipients array."""
    cursor = _JsonCursor(chunks, 0)
    cursor.skip(" \t\r\n\ufeff")
    if not cursor.text.startswith("["):
        raise RecipientsUnreadable("recipients_not_array", "recipients.json must hold one JSON array of objects", 1)
    cursor.consume(1)
    return cursor.offset


def read_json_rows(chunks: Iterable[bytes], start: int, first_item: int) -> Iterator[RawRow]:
    """Array items from `start` (just past `[` or past an item), each an object."""
    cursor = _JsonCursor(chunks, start)
    decoder = json.JSONDecoder()
    item = first_item
    while True:
        cursor.skip(" \t\r\n,")
        if not cursor.text:
            raise RecipientsUnreadable("recipients_not_closed", "recipients.json ends before its closing ]", item)
        if cursor.text.startswith("]"):
            return
        while True:
            try:
                value, end = decoder.raw_decode(cursor.text)
                break
            except json.JSONDecodeError as error:
                if len(cursor.text.encode("utf-8")) > MAX_RECORD_BYTES or not cursor.more():
                    raise RecipientsUnreadable("recipients_not_json", f"item {item} of recipients.json is not JSON: "
                                               f"{error.msg}", item) from None
        item += 1
        start_offset = cursor.offset
        cursor.consume(end)
        row = RawRow(line=item, start=start_offset, end=cursor.offset, next_line=item)
        if isinstance(value, dict):
            row.values = value
        else:
            row.error = "the item is not a JSON object"
        yield row
