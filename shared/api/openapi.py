"""The Swagger 2.0 definition of the API, built from `shared.api.operations` and the pydantic models.

Served at GET /api/openapi.json, and written to connector/apiDefinition.swagger.json (by
`python -m devtools.connector`) for `paconn create` / `pac connector create`; import it as a Power
Platform custom connector (docs/POWER_AUTOMATE.md, connector/README.md). It follows the Power
Platform connector schema and the rules in devtools/connector_rules.py, which the tests enforce.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel

from shared.api import swagger
from shared.api.labels import ENUM_LABELS
from shared.api.operations import HEADERS, OPERATIONS, ApiOperation, Param
from shared.api.problems import PROBLEM_CONTENT_TYPE, Problem
from shared.config import Settings

API_VERSION = "1.0"
KEY_SCHEME = "functionKey"
# Power Platform: at most 30 characters, without "API" or "Connector".
TITLE = "Connective Signing Flows"


def _models() -> list[tuple[type[BaseModel], str]]:
    seen: dict[type[BaseModel], str] = {Problem: "serialization"}
    for operation in OPERATIONS:
        if operation.body is not None:
            seen[operation.body] = "validation"
        for answer in operation.answers:
            if answer.model is not None:
                seen.setdefault(answer.model, "serialization")
        if operation.notification is not None:
            seen.setdefault(operation.notification, "serialization")
    return list(seen.items())


def _parameter(param: Param) -> dict[str, Any]:
    out: dict[str, Any] = {"name": param.name, "in": param.location, "required": param.required or
                           param.location == "path", "type": param.type, "x-ms-summary": param.summary,
                           "description": param.description}
    if param.format:
        out["format"] = param.format
    if param.enum:
        out["enum"] = list(param.enum)
        out["x-ms-enum-values"] = swagger.enum_values(param.enum)
    if param.visibility:
        out["x-ms-visibility"] = param.visibility
    return out


def _operation(operation: ApiOperation, refs: dict[str, str]) -> dict[str, Any]:
    parameters = [_parameter(p) for p in operation.params]
    if operation.body is not None:
        parameters.append({"name": "body", "in": "body", "required": True,
                           "x-ms-summary": operation.body.model_config.get("title") or "Request",
                           "description": " ".join((operation.body.__doc__ or "").split()),
                           "schema": {"$ref": refs[operation.body.__name__]}})
    responses: dict[str, Any] = {}
    for answer in operation.answers:
        entry: dict[str, Any] = {"description": answer.description}
        model = answer.model or (Problem if answer.status >= 400 else None)
        if model is not None:
            entry["schema"] = {"$ref": refs[model.__name__]}
        if answer.headers:
            entry["headers"] = {name: HEADERS[name] for name in answer.headers}
        responses[str(answer.status)] = entry
    responses["default"] = {"description": "An error, as application/problem+json.",
                            "schema": {"$ref": refs[Problem.__name__]}}
    out: dict[str, Any] = {"operationId": operation.operation_id, "summary": operation.summary,
                           "description": operation.description, "parameters": parameters,
                           "responses": responses, **_resolved(operation.extensions, refs)}
    if operation.anonymous:
        out["security"] = []
    return out


def _resolved(extensions: dict[str, Any], refs: dict[str, str]) -> dict[str, Any]:
    """Extensions name models by class (#/definitions/WebhookEvent); point them at the generated names."""
    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            if set(value) == {"$ref"} and value["$ref"].startswith(swagger.REF_PREFIX):
                return {"$ref": refs[value["$ref"][len(swagger.REF_PREFIX):]]}
            return {k: walk(v) for k, v in value.items()}
        return value
    return walk(extensions)


def _notification(model: type[BaseModel], refs: dict[str, str]) -> dict[str, Any]:
    """x-ms-notification-content: what the trigger receives, on the path item (not the operation)."""
    return {"description": " ".join((model.__doc__ or "").split()), "schema": {"$ref": refs[model.__name__]}}


def build_openapi(settings: Settings) -> dict[str, Any]:
    return build_definition(settings.public_base_url)


def build_definition(public_base_url: str) -> dict[str, Any]:
    """The definition for an app reached at `public_base_url` (scheme, host and optional path)."""
    base = urlsplit(public_base_url)
    refs, definitions = swagger.definitions(_models(), ENUM_LABELS)
    paths: dict[str, dict[str, Any]] = {}
    for operation in OPERATIONS:
        item = paths.setdefault(operation.path, {})
        item[operation.method.lower()] = _operation(operation, refs)
        if operation.notification is not None:
            item["x-ms-notification-content"] = _notification(operation.notification, refs)
    return {
        "swagger": "2.0",
        "info": {
            "title": TITLE,
            "description": "Create Connective eSignatures signing packages, follow them and react to their "
                           "events. Reads come from the app's status table and cost no Connective calls.",
            "version": API_VERSION,
        },
        "host": base.netloc,
        "basePath": (base.path.rstrip("/") or "") + "/api",
        "schemes": [base.scheme or "https"],
        "consumes": ["application/json"],
        "produces": ["application/json", PROBLEM_CONTENT_TYPE],
        "securityDefinitions": {
            KEY_SCHEME: {"type": "apiKey", "in": "header", "name": "x-functions-key",
                         "description": "A function key of the app (Azure portal: the function app's App keys)."},
        },
        "security": [{KEY_SCHEME: []}],
        "paths": paths,
        "definitions": definitions,
    }
