"""Route templates of HTTP triggers, matched the way ASP.NET Core routing (the real host) matches them.

Hand-written because no Python router speaks this template language: `{id:int}` constraints,
optional `{x?}`, defaults `{x=v}`, catch-all `{*rest}`, case-insensitive literals, and the
precedence of literal segments over parameters.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from devtools.host.config import HostConfigError

_PARAMETER = re.compile(r"\{([^{}]+)\}")


def _is_int(bits: int) -> Callable[[str], bool]:
    def check(value: str) -> bool:
        return re.fullmatch(r"-?\d+", value) is not None and -(2 ** (bits - 1)) <= int(value) < 2 ** (bits - 1)
    return check


def _parses(parse: Callable[[str], Any]) -> Callable[[str], bool]:
    def check(value: str) -> bool:
        try:
            parse(value)
        except ValueError:
            return False
        return True
    return check


_SIMPLE_CONSTRAINTS: dict[str, Callable[[str], bool]] = {
    "int": _is_int(32), "long": _is_int(64),
    "bool": lambda v: v.lower() in {"true", "false"},
    "guid": _parses(uuid.UUID),
    "alpha": lambda v: re.fullmatch(r"[A-Za-z]+", v) is not None,
    "double": _parses(float), "float": _parses(float), "decimal": _parses(float),
    "datetime": _parses(datetime.fromisoformat),
}


def _constraint(text: str) -> Callable[[str], bool]:
    name, _, argument = text.partition("(")
    name = name.strip().lower()
    if not argument:
        if name not in _SIMPLE_CONSTRAINTS:
            raise HostConfigError(f"route constraint {text!r} is not supported")
        return _SIMPLE_CONSTRAINTS[name]
    argument = argument.removesuffix(")")
    if name == "regex":
        pattern = re.compile(argument, re.IGNORECASE)
        return lambda v: pattern.search(v) is not None
    numbers = [int(n) for n in argument.split(",")]
    checks: dict[str, Callable[[str], bool]] = {
        "min": lambda v: _is_int(64)(v) and int(v) >= numbers[0],
        "max": lambda v: _is_int(64)(v) and int(v) <= numbers[0],
        "range": lambda v: _is_int(64)(v) and numbers[0] <= int(v) <= numbers[-1],
        "minlength": lambda v: len(v) >= numbers[0],
        "maxlength": lambda v: len(v) <= numbers[0],
        "length": lambda v: numbers[0] <= len(v) <= numbers[-1],
    }
    if name not in checks:
        raise HostConfigError(f"route constraint {text!r} is not supported")
    return checks[name]


def _split_constraints(text: str) -> list[str]:
    """`id:int:min(1)` → [id, int, min(1)], leaving colons inside parentheses alone."""
    parts, depth, current = [], 0, ""
    for char in text:
        depth += char == "("
        depth -= char == ")"
        if char == ":" and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    return [*parts, current]


@dataclass
class _Parameter:
    name: str
    group: str
    checks: list[Callable[[str], bool]] = field(default_factory=list)
    optional: bool = False
    default: str | None = None
    catch_all: bool = False


@dataclass
class RouteTemplate:
    template: str
    pattern: re.Pattern[str]
    parameters: list[_Parameter]
    precedence: tuple[int, ...]

    @classmethod
    def compile(cls, template: str) -> RouteTemplate:
        parameters: list[_Parameter] = []
        regex, precedence = "", []
        for segment in [s for s in template.strip("/").split("/") if s]:
            pieces, last = [], 0
            segment_rank = 0
            for match in _PARAMETER.finditer(segment):
                pieces.append(re.escape(segment[last:match.start()]))
                parameter = cls._parameter(match.group(1), f"p{len(parameters)}")
                parameters.append(parameter)
                whole_segment = match.group(0) == segment
                if parameter.catch_all:
                    pieces.append(f"(?P<{parameter.group}>.*)")
                    segment_rank = 4
                else:
                    lazy = "" if whole_segment else "?"
                    pieces.append(f"(?P<{parameter.group}>[^/]+{lazy})")
                    segment_rank = max(segment_rank, 3 if parameter.optional else 1 if parameter.checks else 2)
                last = match.end()
            pieces.append(re.escape(segment[last:]))
            body = "".join(pieces)
            lone = _PARAMETER.fullmatch(segment) is not None
            optional = lone and (parameters[-1].optional or parameters[-1].default is not None
                                 or parameters[-1].catch_all)
            regex += f"(?:/{body})?" if optional else f"/{body}"
            precedence.append(segment_rank)
        return cls(template, re.compile(f"^{regex}/?$", re.IGNORECASE), parameters, tuple(precedence))

    @staticmethod
    def _parameter(text: str, group: str) -> _Parameter:
        catch_all = text.startswith("*")
        text = text.lstrip("*")
        default = None
        if "=" in text:
            text, default = text.split("=", 1)
        optional = text.endswith("?")
        name, *constraints = _split_constraints(text.rstrip("?"))
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise HostConfigError(f"route parameter name {name!r} is not valid")
        return _Parameter(name=name, group=group, checks=[_constraint(c) for c in constraints],
                          optional=optional, default=default, catch_all=catch_all)

    def match(self, path: str) -> dict[str, str] | None:
        found = self.pattern.match(path if path.startswith("/") else f"/{path}")
        if not found:
            return None
        values: dict[str, str] = {}
        for parameter in self.parameters:
            value = found.group(parameter.group)
            if value is None or value == "":
                if parameter.default is not None:
                    values[parameter.name] = parameter.default
                continue
            if not all(check(value) for check in parameter.checks):
                return None
            values[parameter.name] = value
        return values


@dataclass
class Route:
    template: RouteTemplate
    methods: frozenset[str] | None
    target: Any


class Router:
    """Routes ordered by precedence: literal segments first, catch-alls last."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix.strip("/")
        self._routes: list[Route] = []

    def add(self, template: str, methods: list[str] | None, target: Any) -> str:
        full = "/".join(p for p in (self.prefix, template.strip("/")) if p)
        route = Route(RouteTemplate.compile(full), frozenset(m.upper() for m in methods) if methods else None, target)
        self._routes.append(route)
        self._routes.sort(key=lambda r: r.template.precedence)
        return full

    def match(self, method: str, path: str) -> tuple[Any, dict[str, str]] | None:
        """The target for a request, or None; a method that the route does not allow is no match (404)."""
        for route in self._routes:
            values = route.template.match(path)
            if values is not None and (route.methods is None or method.upper() in route.methods):
                return route.target, values
        return None
