"""docs/BAD_INPUT.md names real tests, and enough kinds of bad input."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = ROOT / "docs" / "BAD_INPUT.md"
TEST_ID = re.compile(r"(tests/[\w/]+\.py)::(\w+)")


def _rows() -> list[list[str]]:
    rows = []
    for line in CATALOGUE.read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0].isdigit():
            rows.append(cells)
    return rows


def _test_functions(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {node.name for node in tree.body if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")}


def test_the_catalogue_has_at_least_30_numbered_kinds_across_the_surfaces() -> None:
    rows = _rows()
    assert [int(row[0]) for row in rows] == list(range(1, len(rows) + 1))
    assert len(rows) >= 30
    surfaces = {row[1].split(" ")[0] for row in rows}
    assert {"inbox", "manifest", "HTTP", "callback", "webhooks"} <= surfaces


def test_every_test_named_in_the_catalogue_exists() -> None:
    missing = []
    for row in _rows():
        named = TEST_ID.findall(row[4])
        assert named, f"row {row[0]} names no test"
        for path, function in named:
            file = ROOT / path
            if not file.exists() or function not in _test_functions(file):
                missing.append(f"{path}::{function}")
    assert missing == []
