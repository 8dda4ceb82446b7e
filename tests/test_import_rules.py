"""The import rules of docs/ARCHITECTURE.md ("Layers"), checked on every import statement of the code,
including the ones inside functions (cold-start deferred imports) and under TYPE_CHECKING."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> Iterator[tuple[int, str]]:
    """(line, imported module) for every import in `path`."""
    return _imports_in(path.read_text(encoding="utf-8"), _module_name(path), path.name == "__init__.py")


def _imports_in(source: str, module_name: str, is_package: bool) -> Iterator[tuple[int, str]]:
    package = module_name.split(".") if is_package else module_name.split(".")[:-1]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            yield node.lineno, module
            # `from package import module` imports a module too.
            for alias in node.names:
                yield node.lineno, f"{module}.{alias.name}"


def _python_files(*folders: str) -> list[Path]:
    return sorted(path for folder in folders for path in (ROOT / folder).rglob("*.py"))


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _breaches(files: list[Path], forbidden: object) -> list[str]:
    found = []
    for path in files:
        own = _module_name(path)
        for line, module in _imports(path):
            if forbidden(own, module):  # type: ignore[operator]
                found.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    return sorted(set(found))


def test_services_never_import_triggers() -> None:
    services = [path for path in _python_files("shared") if not _within(_module_name(path), "shared.connective")]
    assert _breaches(services, lambda own, module: _within(module, "functions") or module == "function_app") == []


def test_the_client_imports_no_other_part_of_shared() -> None:
    def outside_the_client(own: str, module: str) -> bool:
        return _within(module, "shared") and not _within(module, "shared.connective")

    assert _breaches(_python_files("shared/connective"), outside_the_client) == []


def test_production_code_never_imports_devtools() -> None:
    production = [ROOT / "function_app.py", *_python_files("functions", "shared")]
    assert _breaches(production, lambda own, module: _within(module, "devtools") or _within(module, "bench")) == []


def test_no_trigger_module_imports_another() -> None:
    def another_trigger(own: str, module: str) -> bool:
        return _within(module, "functions") and module not in ("functions", own) and not _within(module, own)

    assert _breaches(_python_files("functions"), another_trigger) == []


def test_triggers_compose_through_services() -> None:
    # Settings, storage and clients come from shared.pipeline.services, the one composition point.
    composed_elsewhere = ("shared.config", "shared.connection", "shared.storage.store", "shared.storage.clients",
                          "shared.connective")
    triggers = [ROOT / "function_app.py", *_python_files("functions")]
    assert _breaches(triggers, lambda own, module: any(_within(module, name) for name in composed_elsewhere)) == []


def test_the_rules_see_deferred_and_relative_imports() -> None:
    source = "def handler():\n    from ..storage import names\n    import functions.api\n"
    found = {module for _, module in _imports_in(source, "shared.pipeline.example", is_package=False)}
    assert {"shared.storage", "shared.storage.names", "functions.api"} <= found
