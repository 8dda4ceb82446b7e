"""docs/CONNECTIVE_CONTRACT.md names, on every row, tests that exist and variants the end-to-end test runs;
docs/SANDBOX.md lists every sandbox knob."""

from __future__ import annotations

import dataclasses
import re

from devtools.sandbox.knobs import Knobs
from tests.contract.test_variants_e2e import VARIANTS
from tests.doc_tables import ROOT, missing_tests, numbered_rows

CONTRACT = ROOT / "docs" / "CONNECTIVE_CONTRACT.md"
VARIANT = re.compile(r"`([A-Za-z0-9-]+)`")


def _rows() -> list[list[str]]:
    return numbered_rows(CONTRACT)


def test_every_row_has_a_fact_a_source_an_answer_and_existing_tests() -> None:
    rows = _rows()
    assert len(rows) >= 15 and [int(row[0]) for row in rows] == list(range(1, len(rows) + 1))
    for row in rows:
        assert len(row) == 6 and all(row[1:5]), f"row {row[0]} has an empty cell"
    assert [name for row in rows for name in missing_tests(row[5])] == []


def test_every_variant_the_doc_names_is_run_and_every_variant_run_is_named() -> None:
    named = {name for row in _rows() if "Variants:" in row[4]
             for name in VARIANT.findall(row[4].split("Variants:", 1)[1])}
    run = {variant for variants in VARIANTS.values() for variant in variants}
    assert named == run


def test_the_checklist_confirms_every_unconfirmed_row() -> None:
    checklist = CONTRACT.read_text(encoding="utf-8").split("## Go-live checklist", 1)[1]
    covered = {int(number) for group in re.findall(r"\(rows? ([\d, and]+)\)", checklist)
               for number in re.findall(r"\d+", group)}
    unconfirmed = {int(row[0]) for row in _rows() if "unconfirmed" in row[3]}
    assert unconfirmed and unconfirmed <= covered, sorted(unconfirmed - covered)


def test_the_sandbox_page_lists_every_knob() -> None:
    page = (ROOT / "docs" / "SANDBOX.md").read_text(encoding="utf-8")
    for knob in dataclasses.fields(Knobs):
        flag = "--" + knob.name.replace("_", "-")
        assert f"| `{flag}` | `{knob.name}` |" in page, f"docs/SANDBOX.md lacks {flag}"
