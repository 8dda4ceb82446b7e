"""The Swagger 2.0 definition of the API, built from `shared.api.operations` and the pydantic models.

Served at GET /api/openapi.json; import it as a Power Platform custom connector (docs/POWER_AUTOMATE.md).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel

from shared.api import swagger
from shared.api.operations import EXTRA_MODELS, HEADERS, OPERATIONS, ApiOperation, Param
from shared.api.problems import PROBLEM_CONTENT_TYPE, Problem
from shared.config import Settings

API_VERSION = "1.0"
KEY_SCHEME = "functionKey"


def _models() -> list[tuple[type[BaseModel], str]]:
    seen: dict[type[BaseModel], str] = {Problem: "serialization"}
    for operation in OPERATIONS:
        if operation.body is not None:
            seen[operation.body] = "validation"
        for answer in operation.answers:
            if answer.model is not None:
                seen.setdefault(answer.model, "serialization")
    for model in EXTRA_MODELS:
        seen.setdefault(model, "serialization")
    return list(seen.items())


def _parameter(param: Param) -> dict[str, Any]:
    out: dict[str, Any] = {"name": param.name, "in": param.location, "required": param.required or
                           param.location == "path", "type": param.type, "x-ms-summary": param.summary,
                           "description": param.description}
    if param.format:
        out["format"] = param.format
    if param.enum:
        out["enum"] = list(param.enum)
    if param.visibility:
        out["x-ms-visibility"] = param.visibility
    return out


def _operation(operation: ApiOperation, refs: dict[str, str]) -> dict[str, Any]:
    parameters = [_parameter(p) for p in operation.params]
    if operation.body is not None:
        parameters.append({"name": "body", "in": "body", "required": True, "x-ms-summary": "Request",
                           "description": (operation.body.__doc__ or "The request.").strip().splitlines()[0],
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


def build_openapi(settings: Settings) -> dict[str, Any]:
    base = urlsplit(settings.get("PUBLIC_BASE_URL"))
    refs, definitions = swagger.definitions(_models())
    paths: dict[str, dict[str, Any]] = {}
    for operation in OPERATIONS:
        paths.setdefault(operation.path, {})[operation.method.lower()] = _operation(operation, refs)
    return {
        "swagger": "2.0",
        "info": {
            "title": "Connective eSignatures signing flows",
            "description": "Create signing packages, follow them and react to their events. Reads come from "
                           "the app's status table and cost no Connective calls.",
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
