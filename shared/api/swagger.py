"""Pydantic JSON Schema (2020-12) to Swagger 2.0 schema objects, the way Power Platform reads them.

Power Platform custom connectors import Swagger 2.0 only, whose schema dialect is a subset of
JSON Schema draft 4 without `anyOf`, `oneOf`, `null` types, `const` or numeric exclusive bounds.
No maintained library converts in this direction, so this module does, for the constructs that
pydantic emits for our models:

- `X | None` (anyOf with a null branch) becomes X with `x-nullable: true`;
- a union of scalars that includes `str` (`int | str`) becomes a string: a flow sends text, and
  the model accepts the text form; any other union is left untyped, which the connector rules
  (devtools/connector_rules.py) refuse;
- `const` becomes a one-value `enum`; numeric `exclusiveMinimum: n` becomes `minimum: n` plus
  `exclusiveMinimum: true`;
- `title` becomes `x-ms-summary` (the label a flow designer shows); a class name used as a title
  (an enum's `PackageStatus`) is split into words;
- nested models and enums are written in place instead of as `$ref`: Swagger 2.0 ignores the
  siblings of a `$ref`, so a referenced field would lose its own label and description, and a
  designer would show the referenced class's name instead. Only the models that operations take
  or return are `definitions`;
- an enum named in `enum_labels` carries `x-ms-enum-values`, the text a designer shows per value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

REF_PREFIX = "#/definitions/"
_DEFS_PREFIX = "#/$defs/"
_KEEP = {
    "type", "format", "description", "default", "enum", "items", "properties", "required", "maxLength",
    "minLength", "pattern", "maximum", "minimum", "maxItems", "minItems", "uniqueItems", "readOnly",
    "additionalProperties", "multipleOf", "example",
}
_EXTENSIONS = re.compile(r"^x-")
_SCALARS = {"string", "integer", "number", "boolean"}
_JOINED = re.compile(r"([a-z0-9])([A-Z])")

EnumLabels = Mapping[str, Mapping[str, str]]  # enum class name -> value -> the text a designer shows


def _words(title: str) -> str:
    """A class name that pydantic uses as a title (PackageStatus) as the words a designer should show."""
    if " " in title or not _JOINED.search(title):
        return title
    return _JOINED.sub(lambda m: f"{m.group(1)} {m.group(2)}", title)


def _is_null(schema: dict[str, Any]) -> bool:
    return schema.get("type") == "null"


def enum_values(labels: Mapping[str, str]) -> list[dict[str, str]]:
    """`x-ms-enum-values` from {value: display name}."""
    return [{"value": value, "displayName": text} for value, text in labels.items()]


class _Converter:
    def __init__(self, defs: dict[str, dict[str, Any]], enum_labels: EnumLabels) -> None:
        self.defs = defs
        self.enum_labels = enum_labels

    def _target(self, ref: str) -> tuple[str, dict[str, Any]]:
        name = ref.removeprefix(_DEFS_PREFIX)
        return name, self.defs[name]

    def node(self, schema: dict[str, Any], seen: tuple[str, ...] = ()) -> dict[str, Any]:
        """One JSON Schema node (and everything below it) as a Swagger 2.0 schema object."""
        schema = dict(schema)
        if "$ref" in schema:
            name, target = self._target(schema.pop("$ref"))
            if name in seen:
                raise ValueError(f"recursive model {name} cannot be written in place")
            # The field's own title and description win over the model's.
            written = self.node({**target, **schema}, (*seen, name))
            if name in self.enum_labels and "enum" in written:
                written.setdefault("x-ms-enum-values", enum_values(self.enum_labels[name]))
            return written
        for union_key in ("anyOf", "oneOf"):
            if union_key in schema:
                return self._union(schema, schema.pop(union_key), seen)
        out: dict[str, Any] = {}
        if "const" in schema:
            schema.setdefault("enum", [schema.pop("const")])
        for bound, limit in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
            value = schema.get(bound)
            if isinstance(value, int | float) and not isinstance(value, bool):
                schema[limit] = schema.pop(bound)
                out[bound] = True
        if schema.get("examples"):
            schema["example"] = schema["examples"][0]
        if "title" in schema:
            out["x-ms-summary"] = _words(schema["title"])
        if schema.get("default", 0) is None:
            del schema["default"]
        for key, value in schema.items():
            if key == "properties":
                out["properties"] = {name: self.node(sub, seen) for name, sub in value.items()}
            elif key == "items":
                out["items"] = self.node(value, seen)
            elif key == "additionalProperties" and isinstance(value, dict):
                out[key] = self.node(value, seen)
            elif key == "allOf":
                parts: dict[str, Any] = {}
                for part in value:
                    parts.update(self.node(part, seen))
                out = {**parts, **out}
            elif key in _KEEP or _EXTENSIONS.match(key):
                out[key] = value
        if out.get("type") == "null":
            out.pop("type")
        return out

    def _union(self, schema: dict[str, Any], branches: list[dict[str, Any]], seen: tuple[str, ...]) -> dict[str, Any]:
        typed = [b for b in branches if not _is_null(b)]
        if len(typed) == 1:
            out = self.node({**typed[0], **schema}, seen)
        else:
            out = self.node(schema, seen)
            kinds = {b.get("type") for b in typed}
            if "string" in kinds and kinds <= _SCALARS:
                out["type"] = "string"
                if "default" in out:
                    out["default"] = str(out["default"])
            else:
                out.pop("type", None)
        if len(typed) < len(branches):
            out["x-nullable"] = True
        return out


def convert(schema: dict[str, Any], defs: dict[str, dict[str, Any]] | None = None,
            enum_labels: EnumLabels | None = None) -> dict[str, Any]:
    """One JSON Schema node as a Swagger 2.0 schema object; `$ref`s resolve in `defs` ($defs)."""
    return _Converter(defs or {}, enum_labels or {}).node(schema)


def definitions(models: list[tuple[type[BaseModel], str]], enum_labels: EnumLabels | None = None,
                ) -> tuple[dict[str, str], dict[str, dict[str, Any]]]:
    """Swagger 2.0 `definitions` for (model, "validation" | "serialization") pairs.

    Returns (the `$ref` of each model by class name, the definitions): one definition per model
    given, with every model it contains written in place."""
    refs, schema = models_json_schema([(model, mode) for model, mode in models],  # type: ignore[misc]
                                      by_alias=True, ref_template=_DEFS_PREFIX + "{model}")
    defs: dict[str, dict[str, Any]] = schema.get("$defs", {})
    converter = _Converter(defs, enum_labels or {})
    names: dict[str, str] = {}
    result: dict[str, dict[str, Any]] = {}
    for model, mode in models:
        ref: str = refs[(model, mode)]["$ref"]  # type: ignore[index]
        name = ref.removeprefix(_DEFS_PREFIX)
        names[model.__name__] = REF_PREFIX + name
        result[name] = converter.node(defs[name], (name,))
    return names, result
