"""Security controls checked without a host: callback token rotation and constant-time comparison,
function keys declared on every HTTP route but health, and OData filters built only from parameters."""

from __future__ import annotations

import ast
import hmac
from collections.abc import Iterator
from pathlib import Path

import azure.functions as func
import pytest

from shared.config import MissingSetting, Settings
from shared.pipeline import tokens
from shared.pipeline.tokens import callback_token, callback_url, verify_callback_token

ROOT = Path(__file__).resolve().parents[2]
APP_SOURCES = sorted([*(ROOT / "shared").rglob("*.py"), *(ROOT / "functions").rglob("*.py")])
REF = "inb-0123456789abcdef0123"


def _settings(secrets: str) -> Settings:
    return Settings({"CALLBACK_SECRETS": secrets, "PUBLIC_BASE_URL": "https://signing.example.com"})


# ---- callback tokens ---------------------------------------------------------------------------------------

def test_rotation_accepts_old_and_new_during_the_overlap_and_only_the_new_after() -> None:
    before, during, after = _settings("old-secret"), _settings("new-secret,old-secret"), _settings("new-secret")
    old_token, new_token = callback_token(before, REF), callback_token(after, REF)
    assert old_token != new_token
    assert callback_token(during, REF) == new_token  # the first secret signs
    assert verify_callback_token(during, REF, old_token) and verify_callback_token(during, REF, new_token)
    assert verify_callback_token(after, REF, new_token) and not verify_callback_token(after, REF, old_token)
    assert not verify_callback_token(before, REF, new_token)
    assert callback_url(during, REF).endswith(f"/{REF}/{new_token}")  # in the path: no query string to lose


def test_a_token_is_bound_to_its_package() -> None:
    settings = _settings("s1,s2")
    assert not verify_callback_token(settings, REF + "x", callback_token(settings, REF))
    for bad in (None, "", " ", "é" * 64, callback_token(settings, REF).upper(), callback_token(settings, REF)[:-1]):
        assert not verify_callback_token(settings, REF, bad)


def test_no_secrets_means_no_callback_is_accepted() -> None:
    with pytest.raises(MissingSetting, match="CALLBACK_SECRETS"):
        verify_callback_token(Settings({"CALLBACK_SECRETS": ""}), REF, "x")


def test_every_secret_is_compared_in_constant_time_without_stopping_early(monkeypatch: pytest.MonkeyPatch) -> None:
    compared: list[tuple[bytes | str, bytes | str]] = []
    real = hmac.compare_digest

    def counting(a: bytes | str, b: bytes | str) -> bool:
        compared.append((a, b))
        return real(a, b)  # type: ignore[arg-type]

    monkeypatch.setattr(tokens.hmac, "compare_digest", counting)
    settings = _settings("first,second,third")
    assert verify_callback_token(settings, REF, callback_token(settings, REF))  # matches the first secret
    assert len(compared) == 3


def _functions_named(tree: ast.AST, names: set[str]) -> Iterator[ast.FunctionDef]:
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name in names:
            yield node


def _calls_compare_digest(function: ast.FunctionDef) -> bool:
    return any(isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "compare_digest"
               for n in ast.walk(function))


SECRET_WORDS = ("secret", "signature", "password", "digest", "hmac", "function_key", "master_key")
# Where the app's own secret tokens are made and checked: no == between two values at all there.
SECRET_MODULES = {"shared/pipeline/tokens.py", "shared/webhooks/signing.py"}


def _names_in(node: ast.AST) -> set[str]:
    found = set()
    for child in ast.walk(node):
        if isinstance(child, ast.Name):
            found.add(child.id.lower())
        elif isinstance(child, ast.Attribute):
            found.add(child.attr.lower())
    return found


def test_secrets_are_only_compared_with_compare_digest() -> None:
    """Static: the verifiers call hmac.compare_digest; no == / != compares two values in the token and
    signature modules, nor anywhere in the app a value whose name says it is a secret, signature, password,
    digest or key (a comparison with None, a literal or a constant is fine)."""
    verifiers = {"verify_callback_token": "shared/pipeline/tokens.py"}  # webhook receivers use a stock library
    for name, path in verifiers.items():
        [function] = _functions_named(ast.parse((ROOT / path).read_text()), {name})
        assert _calls_compare_digest(function), f"{path}::{name} must use hmac.compare_digest"
    offenders = []
    for source in APP_SOURCES:
        for node in ast.walk(ast.parse(source.read_text())):
            if not isinstance(node, ast.Compare) or not any(isinstance(op, ast.Eq | ast.NotEq) for op in node.ops):
                continue
            sides = [node.left, *node.comparators]
            if any(isinstance(side, ast.Constant) or (isinstance(side, ast.Name) and side.id.isupper())
                   for side in sides):
                continue  # against None, a literal or a module constant: nothing secret on that side
            words = {name for side in sides for name in _names_in(side)}
            relative = str(source.relative_to(ROOT))
            if relative in SECRET_MODULES or any(word in name for name in words for word in SECRET_WORDS):
                offenders.append(f"{relative}:{node.lineno}")
    assert offenders == [], f"compare secrets with hmac.compare_digest: {offenders}"


# ---- function keys -------------------------------------------------------------------------------------------

# Anonymous routes and what authenticates them instead of a function key.
ANONYMOUS_ROUTES = {
    "health": "nothing to protect",
    tokens.CALLBACK_ROUTE + tokens.ROUTE_PARAMETERS: "the per-package token in the path",
    tokens.NOTIFICATION_ROUTE + tokens.ROUTE_PARAMETERS: "the per-package token in the path",
}


def test_every_http_route_but_health_and_the_callbacks_needs_a_function_key() -> None:
    from tests.api.conftest import http_functions

    routes = {route: name for name, route, _methods, _f in http_functions()}
    assert "health" in routes and len(routes) >= 10
    import function_app

    declared = _declared_auth_levels()
    assert set(declared) == set(routes), "every HTTP function is declared with an explicit auth_level"
    for route, level in declared.items():
        expected = "ANONYMOUS" if route in ANONYMOUS_ROUTES else "FUNCTION"
        assert level == expected, f"{route}: auth_level {level}, expected {expected}"
    assert function_app.app._auth_level is func.AuthLevel.FUNCTION  # the default for a route that names none


def _declared_auth_levels() -> dict[str, str]:
    """route -> auth_level of every @bp.route in functions/, read from the source (the decorators' arguments)."""
    levels: dict[str, str] = {}
    for source in sorted((ROOT / "functions").glob("*.py")):
        module_constants = _string_constants(source)
        for node in ast.walk(ast.parse(source.read_text())):
            if not isinstance(node, ast.FunctionDef):
                continue
            for decorator in node.decorator_list:
                if not (isinstance(decorator, ast.Call) and isinstance(decorator.func, ast.Attribute)
                        and decorator.func.attr == "route"):
                    continue
                arguments = {kw.arg: kw.value for kw in decorator.keywords}
                route = _evaluate_route(arguments["route"], module_constants)
                level = arguments.get("auth_level")
                levels[route] = level.attr if isinstance(level, ast.Attribute) else "MISSING"
    return levels


def _string_constants(source: Path) -> dict[str, str]:
    constants = {"CALLBACK_ROUTE": tokens.CALLBACK_ROUTE, "NOTIFICATION_ROUTE": tokens.NOTIFICATION_ROUTE,
                 "ROUTE_PARAMETERS": tokens.ROUTE_PARAMETERS}
    for node in ast.parse(source.read_text()).body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            constants.update({t.id: node.value.value for t in node.targets if isinstance(t, ast.Name)})
    return constants


def _evaluate_route(node: ast.expr, constants: dict[str, str]) -> str:
    if isinstance(node, ast.Constant):
        return str(node.value)
    if isinstance(node, ast.Name):
        return constants[node.id]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _evaluate_route(node.left, constants) + _evaluate_route(node.right, constants)
    raise AssertionError(f"route expression not understood: {ast.dump(node)}")


# ---- OData filters ---------------------------------------------------------------------------------------------

QUERY_METHODS = {"query_entities", "list_entities", "query", "query_tables"}


def _is_formatted(node: ast.expr) -> bool:
    if isinstance(node, ast.JoinedStr):
        return any(isinstance(part, ast.FormattedValue) for part in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod | ast.Add):
        return True
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in {"format",
                                                                                                        "format_map"}


def _filter_argument(call: ast.Call) -> ast.expr | None:
    for keyword in call.keywords:
        if keyword.arg in {"query_filter", "filter", "filter_expression"}:
            return keyword.value
    return call.args[0] if call.args else None


def _assigned_values(function: ast.AST, name: str) -> list[ast.expr]:
    values: list[ast.expr] = []
    for node in ast.walk(function):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] \
            if isinstance(node, ast.AugAssign) else []
        if any(isinstance(target, ast.Name) and target.id == name for target in targets):
            values.append(node.value)  # type: ignore[attr-defined]
    return values


def formatted_filters(tree: ast.AST) -> list[int]:
    """Lines where a table query's filter is built by formatting: directly, or through a local variable, or
    from a list of clauses that holds a formatted one."""
    lines = []
    for function in [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.Module)]:
        for call in [n for n in ast.walk(function) if isinstance(n, ast.Call)]:
            if not (isinstance(call.func, ast.Attribute) and call.func.attr in QUERY_METHODS):
                continue
            argument = _filter_argument(call)
            if argument is None:
                continue
            suspects = [argument]
            if isinstance(argument, ast.Name):
                suspects += _assigned_values(function, argument.id)
            if isinstance(argument, ast.Call) and isinstance(argument.func, ast.Attribute) \
                    and argument.func.attr == "join" and argument.args and isinstance(argument.args[0], ast.Name):
                clauses = argument.args[0].id
                suspects += _assigned_values(function, clauses)
                suspects += [c.args[0] for c in ast.walk(function) if isinstance(c, ast.Call) and c.args
                             and isinstance(c.func, ast.Attribute) and c.func.attr in {"append", "extend", "insert"}
                             and isinstance(c.func.value, ast.Name) and c.func.value.id == clauses]
                suspects = [e for s in suspects for e in (s.elts if isinstance(s, ast.List) else [s])]
            if any(_is_formatted(s) for s in suspects):
                lines.append(call.lineno)
    return sorted(set(lines))


def test_the_odata_check_finds_formatted_filters() -> None:
    bad = ast.parse(
        "def a(t, ref):\n    return t.query_entities(f\"PartitionKey eq '{ref}'\")\n"
        "def b(t, ref):\n    flt = \"PartitionKey eq '%s'\" % ref\n    return t.list_entities(flt)\n"
        "def c(t, ref):\n    clauses = ['RowKey eq @r']\n    clauses.append(\"Status eq '{}'\".format(ref))\n"
        "    return t.query_entities(' and '.join(clauses))\n"
        "def d(t, ref):\n    return t.query_entities(query_filter=\"PartitionKey eq '\" + ref + \"'\")\n")
    assert formatted_filters(bad) == [2, 5, 9, 11]
    good = ast.parse("def a(t, ref):\n    return t.query_entities('PartitionKey eq @ref', parameters={'ref': ref})\n")
    assert formatted_filters(good) == []


def test_no_odata_filter_in_the_app_is_built_by_string_formatting() -> None:
    offenders = {str(source.relative_to(ROOT)): lines for source in APP_SOURCES
                 if (lines := formatted_filters(ast.parse(source.read_text())))}
    assert offenders == {}, f"pass filter values as parameters: {offenders}"
