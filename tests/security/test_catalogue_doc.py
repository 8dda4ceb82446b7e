"""docs/BAD_INPUT.md names real tests, and enough kinds of bad input."""

from __future__ import annotations

from tests.doc_tables import ROOT, missing_tests, numbered_rows

CATALOGUE = ROOT / "docs" / "BAD_INPUT.md"


def _rows() -> list[list[str]]:
    return numbered_rows(CATALOGUE)


def test_the_catalogue_has_at_least_30_numbered_kinds_across_the_surfaces() -> None:
    rows = _rows()
    assert [int(row[0]) for row in rows] == list(range(1, len(rows) + 1))
    assert len(rows) >= 30
    surfaces = {row[1].split(" ")[0] for row in rows}
    assert {"inbox", "manifest", "HTTP", "callback", "webhooks"} <= surfaces


def test_every_test_named_in_the_catalogue_exists() -> None:
    assert [name for row in _rows() for name in missing_tests(row[4])] == []
