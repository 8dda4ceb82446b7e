"""Reading the numbered tables of the docs that name their tests (BAD_INPUT.md, CONNECTIVE_CONTRACT.md)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEST_ID = re.compile(r"(tests/[\w/]+\.py)::(\w+)")


def numbered_rows(page: Path) -> list[list[str]]:
    """The cells of every table row whose first cell is a number."""
    rows = []
    for line in page.read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0].isdigit():
            rows.append(cells)
    return rows


def defined_tests(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {node.name for node in tree.body if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")}


def missing_tests(cell: str) -> list[str]:
    """The `tests/…py::test_…` names in a cell that do not exist; AssertionError when it names none."""
    named = TEST_ID.findall(cell)
    assert named, f"names no test: {cell[:80]}"
    return [f"{path}::{function}" for path, function in named
            if not (ROOT / path).exists() or function not in defined_tests(ROOT / path)]
