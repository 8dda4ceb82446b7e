"""JSON read strictly: a key repeated in one object is an error, where `json` would keep the last value
silently (two readers of one document could then disagree on what it says)."""

from __future__ import annotations

from typing import Any


class DuplicateKeyError(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(f"the key {key!r} appears twice in one object")
        self.key = key


def no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """`object_pairs_hook` for `json.loads`: the object, or DuplicateKeyError."""
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise DuplicateKeyError(key)
        result[key] = value
    return result
