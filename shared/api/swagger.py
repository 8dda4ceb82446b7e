"""Pydantic JSON Schema (2020-12) to Swagger 2.0 schema objects.

Power Platform custom connectors import Swagger 2.0 only, whose schema dialect is a subset of
JSON Schema draft 4 without `anyOf`, `oneOf`, `null` types, `const` or numeric exclusive bounds.
No maintained library converts in this direction, so this module does, for the constructs that
pydantic emits for our models:

- `X | None` (anyOf with a null branch) becomes X with `x-nullable: true`;
- other unions (`int | str`) become an untyped schema, which connectors show as "any";
- `const` becomes a one-value `enum`; numeric `exclusiveMinimum: n` becomes `minimum: n` plus
  `exclusiveMinimum: true`;
- `title` becomes `x-ms-summary` (the label a flow designer shows), and a property without a
  description gets one made from that label, so every field carries both;
- `$defs` move to the document's `definitions`, `$ref`s are rewritten to point there.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

REF_PREFIX = "#/definitions/"
_KEEP = {
    "type", "format", "description", "default", "enum", "items", "properties", "required", "maxLength",
    "minLength", "pattern", "maximum", "minimum", "maxItems", "minItems", "uniqueItems", "readOnly",
    "additionalProperties", "$ref", "multipleOf", "example", "allOf",
}
_EXTENSIONS = re.compile(r"^x-")


def _is_null(schema: dict[str, Any]) -> bool:
    return schema.get("type") == "null"


def _label(name: str) -> str:
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name).replace("_", " ").split()
    return " ".join(word if word.isupper() else word.capitalize() for word in words)


def convert(schema: dict[str, Any]) -> dict[str, Any]:
    """One JSON Schema node (and everything below it) as a Swagger 2.0 schema object."""
    schema = dict(schema)
    out: dict[str, Any] = {}
    for union_key in ("anyOf", "oneOf"):
        if union_key in schema:
            every_branch = schema.pop(union_key)
            branches = [b for b in every_branch if not _is_null(b)]
            if len(branches) == 1:
                out = convert({**branches[0], **schema})
            else:
                out = convert(schema)
                out.pop("type", None)
            if len(branches) < len(every_branch) and "$ref" not in out:
                out["x-nullable"] = True
            return out
    if "const" in schema:
        schema.setdefault("enum", [schema.pop("const")])
    if isinstance(schema.get("exclusiveMinimum"), int | float) and not isinstance(schema["exclusiveMinimum"], bool):
        schema["minimum"] = schema.pop("exclusiveMinimum")
        out["exclusiveMinimum"] = True
    if isinstance(schema.get("exclusiveMaximum"), int | float) and not isinstance(schema["exclusiveMaximum"], bool):
        schema["maximum"] = schema.pop("exclusiveMaximum")
        out["exclusiveMaximum"] = True
    if schema.get("examples"):
        schema["example"] = schema["examples"][0]
    if "title" in schema:
        out["x-ms-summary"] = schema["title"]
    if schema.get("default", 0) is None:
        del schema["default"]
    if "$ref" in schema:
        # Swagger 2.0 ignores siblings of $ref: the referenced definition carries the texts.
        return {"$ref": schema["$ref"].replace("#/$defs/", REF_PREFIX)}
    for key, value in schema.items():
        if key == "properties":
            out["properties"] = {name: _property(name, sub) for name, sub in value.items()}
        elif key == "items":
            out["items"] = convert(value)
        elif key == "additionalProperties" and isinstance(value, dict):
            out[key] = convert(value)
        elif key == "allOf":
            out[key] = [convert(part) for part in value]
        elif key in _KEEP or _EXTENSIONS.match(key):
            out[key] = value
    if out.get("type") == "null":
        out.pop("type")
    return out


def _property(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    converted = convert(schema)
    if "$ref" in converted:
        return converted
    converted.setdefault("x-ms-summary", _label(name))
    converted.setdefault("description", f"{converted['x-ms-summary']}.")
    return converted


def definitions(models: list[tuple[type[BaseModel], str]]) -> tuple[dict[str, str], dict[str, dict[str, Any]]]:
    """Swagger 2.0 `definitions` for (model, "validation" | "serialization") pairs.

    Returns (the `$ref` of each model by class name, the definitions)."""
    refs, schema = models_json_schema([(model, mode) for model, mode in models],  # type: ignore[misc]
                                      by_alias=True, ref_template="#/$defs/{model}")
    names = {model.__name__: refs[(model, mode)]["$ref"].replace("#/$defs/", REF_PREFIX)  # type: ignore[index]
             for model, mode in models}
    result: dict[str, dict[str, Any]] = {}
    for name, definition in schema.get("$defs", {}).items():
        converted = convert(definition)
        converted.setdefault("x-ms-summary", _label(name))
        converted.setdefault("description", converted["x-ms-summary"])
        result[name] = converted
    return names, result
