"""Reading request bodies and query parameters: size limit, strict JSON, model validation.

Every failure is an `ApiProblem` with a message a flow author can act on: the body is too large
(413), is not JSON or repeats a key (400), names fields the model does not have (400, listing
them), or has invalid values (400, one entry per field).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, TypeVar

import azure.functions as func
from pydantic import BaseModel, ValidationError

from shared.api.problems import ApiProblem, FieldError
from shared.strict_json import DuplicateKeyError, no_duplicate_keys

ModelT = TypeVar("ModelT", bound=BaseModel)
MB = 1024 * 1024


def _location(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(body)"


def validation_problem(error: ValidationError, what: str = "request body") -> ApiProblem:
    unknown = [_location(e["loc"]) for e in error.errors() if e["type"] == "extra_forbidden"]
    field_errors = [
        FieldError(field=_location(e["loc"]),
                   message="unknown field" if e["type"] == "extra_forbidden" else e["msg"])
        for e in error.errors(include_input=False, include_url=False)
    ]
    if unknown:
        detail = f"The {what} has unknown fields: {', '.join(unknown)}."
        if len(unknown) < len(field_errors):
            detail += f" It also has {len(field_errors) - len(unknown)} invalid value(s), listed in errors."
    else:
        detail = f"The {what} is invalid: " + "; ".join(f"{e.field}: {e.message}" for e in field_errors[:5])
    return ApiProblem(400, detail, errors=field_errors)


def check_size(req: func.HttpRequest, max_bytes: int) -> bytes:
    declared = req.headers.get("Content-Length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise ApiProblem(413, f"The request body is larger than the limit of {max_bytes // MB} MB.")
    body = req.get_body() or b""
    if len(body) > max_bytes:
        raise ApiProblem(413, f"The request body is larger than the limit of {max_bytes // MB} MB.")
    return body


def read_json_object(req: func.HttpRequest, max_bytes: int) -> dict[str, Any]:
    content_type = (req.headers.get("Content-Type") or "application/json").split(";")[0].strip().lower()
    if content_type != "application/json" and not content_type.endswith("+json"):
        raise ApiProblem(415, f"Send the body as application/json, not {content_type}.")
    body = check_size(req, max_bytes)
    if not body.strip():
        raise ApiProblem(400, "The request body is empty; a JSON object is expected.")
    try:
        parsed = json.loads(body, object_pairs_hook=no_duplicate_keys)
    except DuplicateKeyError as error:
        raise ApiProblem(400, f"The JSON body repeats the key {error.key!r}; each key may appear once.") from None
    except RecursionError:
        raise ApiProblem(400, "The request body nests arrays or objects too deeply.") from None
    except (ValueError, UnicodeDecodeError) as error:
        raise ApiProblem(400, f"The request body is not valid JSON: {error}.") from None
    if not isinstance(parsed, dict):
        raise ApiProblem(400, "The request body must be a JSON object.")
    return parsed


def read_model(req: func.HttpRequest, model: type[ModelT], max_bytes: int) -> ModelT:
    data = read_json_object(req, max_bytes)
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise validation_problem(error) from None


def query_int(req: func.HttpRequest, name: str, default: int, low: int, high: int) -> int:
    raw = req.params.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise ApiProblem(400, f"The parameter {name} must be a whole number from {low} to {high}.",
                         errors=[FieldError(field=name, message=f"expected {low}..{high}")])
    return int(raw)


def query_bool(req: func.HttpRequest, name: str) -> bool:
    raw = (req.params.get(name) or "").strip().lower()
    if raw in ("", "false", "0", "no"):
        return False
    if raw in ("true", "1", "yes"):
        return True
    raise ApiProblem(400, f"The parameter {name} must be true or false.",
                     errors=[FieldError(field=name, message="expected true or false")])


def query_datetime(req: func.HttpRequest, name: str) -> datetime | None:
    raw = req.params.get(name)
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        value = None
    if value is None or value.tzinfo is None:
        raise ApiProblem(400, f"The parameter {name} must be an ISO 8601 date-time with a time zone, "
                              "for example 2030-01-31T00:00:00Z.",
                         errors=[FieldError(field=name, message="expected an ISO 8601 date-time with a zone")])
    return value
