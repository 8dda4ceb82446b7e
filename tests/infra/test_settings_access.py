"""Settings are read only through shared.config, so SETTINGS stays the complete list."""

from __future__ import annotations

import ast
from pathlib import Path

from devtools import infra_model

# shared.environment: the one read before the model exists, a decorator argument at import (it says why).
ALLOWED = {infra_model.ROOT / "shared" / "config.py", infra_model.ROOT / "shared" / "environment.py"}


def _environment_reads(path: Path, root: Path = infra_model.ROOT) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in {"environ", "getenv", "environb", "putenv"}:
            found.append(f"{path.relative_to(root)}:{node.lineno} os.{node.attr}")
        if isinstance(node, ast.ImportFrom) and node.module == "os":
            found.extend(f"{path.relative_to(root)}:{node.lineno} from os import {alias.name}"
                         for alias in node.names if alias.name in {"environ", "getenv", "environb"})
    return found


def test_only_shared_config_reads_the_environment() -> None:
    sources = [p for d in ("functions", "shared") for p in (infra_model.ROOT / d).rglob("*.py")]
    assert sources
    reads = [hit for path in sources if path not in ALLOWED for hit in _environment_reads(path)]
    assert not reads, f"read settings through shared.config.Settings instead: {reads}"


def test_detector_finds_direct_reads(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import os\nfrom os import getenv\nA = os.environ['X']\nB = os.getenv('Y')\n")
    assert len(_environment_reads(sample, root=tmp_path)) == 3
