"""The streamed recipients readers: records cut at the right byte, resumable from any row's end."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from shared.bulk.recipients import (
    RecipientsUnreadable,
    json_array_start,
    read_csv_header,
    read_csv_rows,
    read_json_rows,
)


def chunks(data: bytes, start: int = 0, size: int = 3) -> Iterator[bytes]:
    for offset in range(start, len(data), size):
        yield data[offset:offset + size]


CSV = ('\ufeffemail,First Name,LastName\r\n'
       'a@x.com,"Ann, Q","Smith\nJr"\n'
       '\n'
       'b@x.com,Bob,"He said ""hi"""\n'
       'c@x.com,Cé,Z').encode()


def test_csv_rows_with_quotes_line_breaks_and_a_bom_resume_from_any_row() -> None:
    columns, offset = read_csv_header(chunks(CSV))
    assert columns == ["email", "First Name", "LastName"]
    rows = list(read_csv_rows(chunks(CSV, offset), columns, offset, 2))
    good = [row for row in rows if row.error is None]
    assert [row.values["LastName"] for row in good] == ["Smith\nJr", 'He said "hi"', "Z"]
    assert [row.line for row in good] == [2, 5, 6] and good[1].values["First Name"] == "Bob"
    resumed = list(read_csv_rows(chunks(CSV, good[0].end), columns, good[0].end, good[0].next_line))
    assert [row.values.get("email") for row in resumed if row.error is None] == ["b@x.com", "c@x.com"]
    assert [row.line for row in resumed if row.error is None] == [5, 6]


def test_csv_problems_are_reported_per_row_or_for_the_rest_of_the_file() -> None:
    data = b'email,name\nok@x.com,A\nextra@x.com,B,C\n\xff\xfe@x.com,D\nopen@x.com,"E\n'
    columns, offset = read_csv_header(chunks(data))
    rows = read_csv_rows(chunks(data, offset), columns, offset, 2)
    assert next(rows).error is None
    assert "cells" in (next(rows).error or "")
    assert "UTF-8" in (next(rows).error or "")
    with pytest.raises(RecipientsUnreadable) as unreadable:
        next(rows)
    assert unreadable.value.code == "quote_not_closed" and unreadable.value.line == 5


def test_json_items_resume_from_any_item() -> None:
    items = [{"email": f"p{n}@x.com", "firstName": "Ä" * n} for n in range(4)] + [7]
    data = (" \ufeff" + json.dumps(items, ensure_ascii=False)).encode()
    start = json_array_start(chunks(data))
    rows = list(read_json_rows(chunks(data, start), start, 0))
    assert [row.values.get("email") for row in rows[:4]] == [f"p{n}@x.com" for n in range(4)]
    assert rows[4].error == "the item is not a JSON object" and rows[4].line == 5
    resumed = list(read_json_rows(chunks(data, rows[1].end), rows[1].end, rows[1].next_line))
    assert [row.line for row in resumed] == [3, 4, 5]
    with pytest.raises(RecipientsUnreadable):
        json_array_start(chunks(b'{"email": "x"}'))
