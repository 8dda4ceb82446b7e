"""The string rules Power Platform applies to a custom connector's definition, as checks.

Microsoft's JSON schema for `apiDefinition.swagger.json` (PowerPlatformConnectors, `schemas/`)
says where each `x-ms-*` extension may appear; the certification guidance on Microsoft Learn adds
rules that a schema cannot express. These are those rules, applied to every operation, parameter
and schema property of a definition, so any endpoint that breaks one is named:

- info.title: at most 30 characters, without "API" or "Connector";
- operation summaries: present, at most 80 characters, no "/";
- every description (operations, parameters, responses, headers, schemas, properties): present
  where required and ending with a period;
- triggers (`x-ms-trigger`): summary starting with "When", and typed outputs in the path item's
  `x-ms-notification-content` (never on the operation);
- every parameter and every schema property: a Title Case `x-ms-summary` and a description, a
  type, no bare `$ref` (Swagger 2.0 drops a `$ref`'s siblings, so the label would be lost);
- every enum a maker picks from (parameters, request bodies) with more than one value: an
  `x-ms-enum-values` entry per value.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

MAX_TITLE = 30
MAX_SUMMARY = 80
_METHODS = ("get", "put", "post", "delete", "options", "head", "patch")
# Words that stay lower case inside a Title Case label.
_MINOR_WORDS = {"a", "an", "and", "as", "at", "but", "by", "for", "from", "in", "of", "on", "or", "per", "the",
                "to", "via", "with"}
# A class or field name (ReminderPolicy, packageRef) where words should be: lower case, then upper case.
_JOINED_WORDS = re.compile(r"[a-z][A-Z]")


def is_title_case(text: str) -> bool:
    words = text.split()
    if not words:
        return False
    for index, word in enumerate(words):
        letters = word.lstrip("(\"'")
        if not letters or not letters[0].isalpha():
            continue
        if index > 0 and letters.lower() in _MINOR_WORDS:
            continue
        if not letters[0].isupper() or _JOINED_WORDS.search(letters):
            return False
    return True


def _check_description(where: str, node: dict[str, Any], required: bool = True) -> Iterator[str]:
    description = node.get("description")
    if description is None:
        if required:
            yield f"{where}: no description"
    elif not isinstance(description, str) or not description.strip():
        yield f"{where}: empty description"
    elif not description.rstrip().endswith("."):
        yield f"{where}: description does not end with a period: {description!r}"


def _check_label(where: str, node: dict[str, Any]) -> Iterator[str]:
    label = node.get("x-ms-summary")
    if not isinstance(label, str) or not label.strip():
        yield f"{where}: no x-ms-summary"
    elif not is_title_case(label):
        yield f"{where}: x-ms-summary is not Title Case: {label!r}"


def _check_enum(where: str, node: dict[str, Any], pickable: bool) -> Iterator[str]:
    values = node.get("enum")
    if not pickable or not isinstance(values, list) or len(values) < 2:
        return
    labelled = [entry.get("value") for entry in node.get("x-ms-enum-values", [])]
    if sorted(map(str, labelled)) != sorted(map(str, values)):
        yield f"{where}: x-ms-enum-values do not label every enum value"


def _check_schema(where: str, schema: dict[str, Any], definitions: dict[str, Any], pickable: bool,
                  seen: frozenset[str] = frozenset()) -> Iterator[str]:
    """A schema object and everything under it; properties need labels, descriptions and types."""
    if "$ref" in schema:
        name = str(schema["$ref"]).removeprefix("#/definitions/")
        if name not in definitions:
            yield f"{where}: $ref to a missing definition {schema['$ref']}"
        elif name not in seen:
            yield from _check_schema(f"{where}->{name}", definitions[name], definitions, pickable, seen | {name})
        return
    yield from _check_description(where, schema, required=False)
    if "x-ms-summary" in schema:
        yield from _check_label(where, schema)
    yield from _check_enum(where, schema, pickable)
    for name, sub in schema.get("properties", {}).items():
        at = f"{where}.{name}"
        if "$ref" in sub:
            yield f"{at}: a bare $ref loses the property's label and description; write the schema in place"
            continue
        yield from _check_label(at, sub)
        yield from _check_description(at, sub)
        if not sub.get("type"):
            yield f"{at}: untyped property"
        yield from _check_schema(at, sub, definitions, pickable, seen)
    items = schema.get("items")
    if isinstance(items, dict):
        if "$ref" not in items and not items.get("type"):
            yield f"{where}[]: untyped items"
        yield from _check_schema(f"{where}[]", items, definitions, pickable, seen)
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        yield from _check_schema(f"{where}{{}}", extra, definitions, pickable, seen)


def _check_parameter(where: str, parameter: dict[str, Any], definitions: dict[str, Any]) -> Iterator[str]:
    at = f"{where} parameter {parameter.get('name')}"
    yield from _check_label(at, parameter)
    yield from _check_description(at, parameter)
    if parameter.get("in") == "body":
        yield from _check_schema(at, parameter.get("schema", {}), definitions, pickable=True)
    else:
        if not parameter.get("type"):
            yield f"{at}: untyped parameter"
        yield from _check_enum(at, parameter, pickable=True)


def _check_operation(where: str, operation: dict[str, Any], item: dict[str, Any],
                     definitions: dict[str, Any]) -> Iterator[str]:
    summary = operation.get("summary")
    if not isinstance(summary, str) or not summary.strip():
        yield f"{where}: no summary"
    else:
        if len(summary) > MAX_SUMMARY:
            yield f"{where}: summary longer than {MAX_SUMMARY} characters"
        if "/" in summary:
            yield f"{where}: summary contains '/'"
        if operation.get("x-ms-trigger") and not summary.startswith("When "):
            yield f"{where}: a trigger's summary must start with 'When': {summary!r}"
    if not operation.get("operationId"):
        yield f"{where}: no operationId"
    yield from _check_description(where, operation)
    if "x-ms-notification-content" in operation:
        yield f"{where}: x-ms-notification-content belongs on the path item, not the operation"
    if operation.get("x-ms-trigger"):
        content = item.get("x-ms-notification-content")
        if not isinstance(content, dict) or "schema" not in content:
            yield f"{where}: a trigger without x-ms-notification-content on its path item has no outputs"
    for parameter in operation.get("parameters", []):
        yield from _check_parameter(where, parameter, definitions)
    for status, response in operation.get("responses", {}).items():
        at = f"{where} response {status}"
        yield from _check_description(at, response)
        for name, header in response.get("headers", {}).items():
            yield from _check_description(f"{at} header {name}", header)
        if "schema" in response:
            yield from _check_schema(at, response["schema"], definitions, pickable=False)


def violations(spec: dict[str, Any]) -> list[str]:
    """Every rule the definition breaks, one line each (empty when it follows them all)."""
    found: list[str] = []
    title = spec.get("info", {}).get("title", "")
    if not title or len(title) > MAX_TITLE:
        found.append(f"info.title must have 1 to {MAX_TITLE} characters: {title!r}")
    if re.search(r"\b(api|connector)\b", title, re.IGNORECASE):
        found.append(f"info.title must not say API or Connector: {title!r}")
    found.extend(_check_description("info", spec.get("info", {})))
    definitions = spec.get("definitions", {})
    for name, scheme in spec.get("securityDefinitions", {}).items():
        found.extend(_check_description(f"securityDefinitions.{name}", scheme))
    for path, item in spec.get("paths", {}).items():
        content = item.get("x-ms-notification-content")
        if content is not None:
            found.extend(_check_description(f"{path} x-ms-notification-content", content))
            found.extend(_check_schema(f"{path} x-ms-notification-content", content.get("schema", {}),
                                       definitions, pickable=False))
        for method in _METHODS:
            if method in item:
                found.extend(_check_operation(f"{method.upper()} {path}", item[method], item, definitions))
    for name, definition in definitions.items():
        found.extend(_check_label(f"definitions.{name}", definition))
        found.extend(_check_description(f"definitions.{name}", definition))
    return found


def trigger_outputs(spec: dict[str, Any]) -> dict[str, list[str]]:
    """Each trigger's summary -> the output properties a flow designer offers (dotted paths)."""
    definitions = spec.get("definitions", {})

    def walk(schema: dict[str, Any], prefix: str) -> list[str]:
        if "$ref" in schema:
            schema = definitions[str(schema["$ref"]).removeprefix("#/definitions/")]
        names: list[str] = []
        for name, sub in schema.get("properties", {}).items():
            names.append(prefix + name)
            names.extend(walk(sub, prefix + name + "."))
        items = schema.get("items")
        if isinstance(items, dict):
            names.extend(walk(items, prefix.rstrip(".") + "[]."))
        return names

    outputs: dict[str, list[str]] = {}
    for item in spec.get("paths", {}).values():
        for method in _METHODS:
            operation = item.get(method, {})
            if operation.get("x-ms-trigger"):
                outputs[operation["summary"]] = walk(item.get("x-ms-notification-content", {}).get("schema", {}), "")
    return outputs


def load_commented_json(text: str) -> Any:
    """JSON with `//` comments (whole-line or trailing) and the trailing commas they leave, as in
    Microsoft's published connector schemas."""
    kept: list[str] = []
    in_string = escaped = False
    index = 0
    while index < len(text):
        char = text[index]
        if in_string:
            escaped = not escaped and char == "\\"
            if char == '"' and not escaped:
                in_string = False
            kept.append(char)
        elif char == '"':
            in_string = True
            kept.append(char)
        elif text.startswith("//", index):
            end = text.find("\n", index)
            index = len(text) if end < 0 else end
            continue
        else:
            kept.append(char)
        index += 1
    return json.loads(re.sub(r",(\s*[}\]])", r"\1", "".join(kept)))
