"""Calling the API's functions in-process, the way the host does, and checking every answer
against the served OpenAPI definition.

`ApiClient.call` finds the function whose route matches the path (from the real function app),
builds a `func.HttpRequest`, runs the function, and validates the answer: its status must be
declared for the operation, and its JSON must match the declared schema.
"""

from __future__ import annotations

import json
import re
import types
import uuid
from dataclasses import dataclass
from functools import cache
from typing import Any

import azure.functions as func
import jsonschema
import pytest

from devtools.infra_model import registered_functions
from shared.api.openapi import build_openapi
from shared.api.operations import find
from shared.config import Settings
from shared.storage.store import Store, shared_store
from tests.conftest import SandboxHandle
from tests.pipeline.intake_support import base_env

PUBLIC_BASE_URL = "https://signing.example.com"
SIGNING_SECRET = "api-test-webhook-secret"


@cache
def http_functions() -> tuple[tuple[str, str, tuple[str, ...], Any], ...]:
    """(name, route, methods, user function) of every HTTP function."""
    found = []
    for function in registered_functions():
        trigger = function.get_bindings()[0]
        route = getattr(trigger, "route", None)
        if route is not None:
            methods = tuple(str(getattr(m, "value", m)).upper() for m in trigger.methods or ())
            found.append((function.get_function_name(), route, methods, function.get_user_function()))
    return tuple(found)


def _route_pattern(route: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", route) + "$")


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    mimetype: str

    def json(self) -> Any:
        return json.loads(self.body)


def env_for(connection_string: str, sandbox: SandboxHandle | None = None, **extra: str) -> dict[str, str]:
    api_settings = {
        "PUBLIC_BASE_URL": PUBLIC_BASE_URL,
        "CALLBACK_SECRETS": "api-test-callback-secret",
        "WEBHOOK_SIGNING_SECRET": SIGNING_SECRET,
        "WEBHOOK_ALLOW_LOOPBACK": "true",
    }
    return base_env(connection_string, sandbox, **{**api_settings, **extra})


class ApiClient:
    def __init__(self, monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        self.settings = Settings(env)
        self.store: Store = shared_store(self.settings)
        self.spec = build_openapi(self.settings)

    def call(self, method: str, path: str, body: Any = None, *, raw: bytes | None = None,
             headers: dict[str, str] | None = None, params: dict[str, str] | None = None) -> Answer:
        path = path.split("?", 1)[0].removeprefix(PUBLIC_BASE_URL).removeprefix("/api/")
        candidates = [f for f in http_functions() if _route_pattern(f[1]).match(path)]
        candidates.sort(key=lambda f: f[1].count("{"))  # literal segments win, as in the host
        assert candidates, f"no function serves {path}"
        name, route, _methods, user_function = candidates[0]
        route_params = _route_pattern(route).match(path).groupdict()  # type: ignore[union-attr]
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else b"")
        request_headers = {"Content-Type": "application/json", **(headers or {})} if data else dict(headers or {})
        request = func.HttpRequest(method=method, url=f"{PUBLIC_BASE_URL}/api/{path}", headers=request_headers,
                                   params=params or {}, route_params=route_params, body=data)
        context = types.SimpleNamespace(invocation_id=str(uuid.uuid4()), function_name=name)
        response: func.HttpResponse = user_function(request, context)
        answer = Answer(response.status_code, dict(response.headers), response.get_body(), response.mimetype)
        self._check_against_spec(route, method, route_params, answer)
        return answer

    def _check_against_spec(self, route: str, method: str, route_params: dict[str, str], answer: Answer) -> None:
        operation = find(route, method, route_params)
        if operation is None:
            assert answer.status in (404, 405) and answer.mimetype == "application/problem+json"
            return
        declared = self.spec["paths"][operation.path][method.lower()]["responses"]
        entry = declared.get(str(answer.status)) or declared["default"]
        if answer.status >= 400:
            assert str(answer.status) in declared or answer.status in (413, 415, 500), (
                f"{operation.operation_id} answered {answer.status}, which the definition does not declare")
            assert answer.mimetype == "application/problem+json"
        else:
            assert str(answer.status) in declared, f"{operation.operation_id}: undeclared {answer.status}"
        for header in entry.get("headers", {}):
            assert header in answer.headers, f"{operation.operation_id} {answer.status} lacks {header}"
        if "schema" in entry and answer.body:
            schema = {**entry["schema"], "definitions": self.spec["definitions"]}
            jsonschema.Draft4Validator(schema).validate(answer.json())


@pytest.fixture()
def api(monkeypatch: pytest.MonkeyPatch, storage_connection_string: str) -> ApiClient:
    return ApiClient(monkeypatch, env_for(storage_connection_string))


@pytest.fixture()
def sandbox_api(monkeypatch: pytest.MonkeyPatch, storage_connection_string: str, sandbox: SandboxHandle) -> ApiClient:
    return ApiClient(monkeypatch, env_for(storage_connection_string, sandbox))
