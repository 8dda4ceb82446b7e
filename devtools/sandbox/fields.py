"""Reading request bodies: property names are matched case-insensitively, as the .NET service does."""

from __future__ import annotations

import re
from typing import Any

from devtools.sandbox.errors import bad_request

NAME_FORBIDDEN = re.compile(r"[/\\?%*:|'\"<>&]")


def fold(value: Any) -> Any:
    """Lower-case every object key, recursively, so look-ups ignore case."""
    if isinstance(value, dict):
        return {str(key).lower(): fold(item) for key, item in value.items()}
    if isinstance(value, list):
        return [fold(item) for item in value]
    return value


def get(body: dict[str, Any], *names: str) -> Any:
    """The first present value among the names (aliases such as RedirectUrl / RedirectURL fold anyway)."""
    for name in names:
        value = body.get(name.lower())
        if value is not None:
            return value
    return None


def text(body: dict[str, Any], name: str, *, required: bool = False, where: str = "") -> str | None:
    value = get(body, name)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise bad_request(f"{where or 'Request'}.{name}.Required", f"{name} is required")
        return None
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise bad_request(f"{where or 'Request'}.{name}.Invalid", f"{name} must be a string")
    return str(value)


def integer(body: dict[str, Any], name: str, *, where: str = "", default: int | None = None) -> int | None:
    value = get(body, name)
    if value is None:
        return default
    if isinstance(value, bool):
        raise bad_request(f"{where or 'Request'}.{name}.Invalid", f"{name} must be an integer")
    try:
        return int(str(value).strip())
    except ValueError:
        raise bad_request(f"{where or 'Request'}.{name}.Invalid", f"{name} must be an integer") from None


def number(body: dict[str, Any], name: str, *, where: str) -> float:
    value = get(body, name)
    try:
        result = float(str(value).strip())
    except (TypeError, ValueError):
        raise bad_request(f"{where}.{name}.Invalid", f"{name} must be a number of points") from None
    if result < 0:
        raise bad_request(f"{where}.{name}.Invalid", f"{name} must not be negative")
    return result


def boolean(body: dict[str, Any], name: str, *, where: str = "") -> bool | None:
    value = get(body, name)
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise bad_request(f"{where or 'Request'}.{name}.Invalid", f"{name} must be true or false")


def items(body: dict[str, Any], name: str, *, where: str = "") -> list[Any]:
    value = get(body, name)
    if value is None:
        return []
    if not isinstance(value, list):
        raise bad_request(f"{where or 'Request'}.{name}.Invalid", f"{name} must be an array")
    return value


def objects(body: dict[str, Any], name: str, *, where: str = "") -> list[dict[str, Any]]:
    values = items(body, name, where=where)
    if not all(isinstance(value, dict) for value in values):
        raise bad_request(f"{where or 'Request'}.{name}.Invalid", f"every item of {name} must be an object")
    return values


def display_name(body: dict[str, Any], name: str, *, required: bool, where: str) -> str | None:
    value = text(body, name, required=required, where=where)
    if value is not None and NAME_FORBIDDEN.search(value):
        raise bad_request(f"{where}.{name}.Invalid", f"{name} must not contain / \\ ? % * : | ' \" < > &")
    if value is not None and len(value) > 150:
        raise bad_request(f"{where}.{name}.Invalid", f"{name} is longer than 150 characters")
    return value


def absolute_url(body: dict[str, Any], name: str, *, where: str) -> str | None:
    value = text(body, name, where=where)
    if value is not None and not re.match(r"^https?://[^/\s]+", value, re.IGNORECASE):
        raise bad_request(f"{where}.{name}.Invalid", f"{name} must be an absolute http(s) URL")
    return value


def choice(body: dict[str, Any], name: str, allowed: tuple[str, ...], *, where: str,
           default: str | None = None) -> str | None:
    """A value from an enumeration, compared case-insensitively, returned in its canonical spelling."""
    value = text(body, name, where=where)
    if value is None:
        return default
    for option in allowed:
        if option.lower() == value.lower():
            return option
    raise bad_request(f"{where}.{name}.Invalid", f"{name} must be one of {', '.join(allowed)}")
