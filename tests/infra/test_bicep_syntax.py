"""Bicep syntax, checked with pycep-parser (a parser only: no `bicep build`, no type or API checks)."""

from __future__ import annotations

from pathlib import Path

import pytest
from lark.exceptions import LarkError
from pycep import BicepParser

from devtools import infra_model


def test_infra_has_the_expected_modules() -> None:
    names = {path.relative_to(infra_model.INFRA).as_posix() for path in infra_model.bicep_files()}
    assert {"main.bicep", "modules/function-app.bicep", "modules/storage-account.bicep",
            "modules/key-vault.bicep", "modules/monitoring.bicep", "modules/event-grid.bicep"} <= names


@pytest.mark.parametrize("path", infra_model.bicep_files(), ids=lambda p: p.relative_to(infra_model.INFRA).as_posix())
def test_bicep_file_parses(path: Path) -> None:
    parsed = infra_model.parse(path)
    assert parsed.get("resources") or parsed.get("modules")


def test_parser_rejects_broken_bicep() -> None:
    broken = "param name string\nresource x 'Microsoft.Web/sites@2024-04-01' = {\n  name: name\n"
    with pytest.raises(LarkError):
        BicepParser().parse(text=broken)


def test_main_calls_every_module_file() -> None:
    modules = infra_model.parse(infra_model.MAIN)["modules"].values()
    called = {(infra_model.INFRA / module["detail"]["path"]).resolve() for module in modules}
    assert called == {path.resolve() for path in infra_model.INFRA.glob("modules/*.bicep")}


def test_no_registry_modules() -> None:
    # Registry (br:) modules cannot be resolved offline and hide their resources from checkov.
    for path in infra_model.bicep_files():
        assert "br:" not in path.read_text() and "br/public:" not in path.read_text(), path
