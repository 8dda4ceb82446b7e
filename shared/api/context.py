"""What a handler gets: the request, settings, storage, and the Connective client on demand."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any
from urllib.parse import quote

import azure.functions as func
from pydantic import BaseModel

from shared.api.body import MB, read_json_object, read_model
from shared.api.problems import ApiProblem
from shared.config import Settings
from shared.connective.client import ConnectiveClient
from shared.pipeline import services
from shared.storage.packages import PackageRecord, is_valid_package_ref
from shared.storage.store import Store

# HTTP callers wait for an answer: a short wait for a rate token, then 429 with Retry-After.
API_RATE_WAIT_S = 3.0


@dataclass
class ApiRequest:
    http: func.HttpRequest
    settings: Settings
    store_override: Store | None = field(default=None)

    @cached_property
    def store(self) -> Store:
        return self.store_override or services.store(self.settings)

    @cached_property
    def connective(self) -> ConnectiveClient:
        return services.connective(self.settings, API_RATE_WAIT_S)

    @property
    def max_body_bytes(self) -> int:
        return int(self.settings.api_max_body_mb * MB)

    def body(self, model: type[BaseModel]) -> Any:
        return read_model(self.http, model, self.max_body_bytes)

    def json_body(self) -> dict[str, Any]:
        return read_json_object(self.http, self.max_body_bytes)

    def route(self, name: str) -> str:
        return self.http.route_params.get(name, "")

    def base_url(self) -> str:
        return self.settings.public_base_url.rstrip("/") + "/api"

    def url(self, path: str) -> str:
        return self.base_url() + path

    def package(self) -> PackageRecord:
        ref = self.route("ref")
        if not is_valid_package_ref(ref):
            raise ApiProblem(404, f"There is no package {ref[:100]!r}.")
        record = self.store.packages.get(ref)
        if record is None:
            raise ApiProblem(404, f"There is no package {ref!r}.")
        return record

    def package_url(self, ref: str) -> str:
        return self.url(f"/packages/{quote(ref, safe='')}")


def json_response(payload: BaseModel | dict[str, Any], status: int = 200,
                  headers: dict[str, str] | None = None) -> func.HttpResponse:
    data = payload.model_dump(mode="json", by_alias=True, exclude_none=True) if isinstance(payload, BaseModel) \
        else payload
    return func.HttpResponse(json.dumps(data), status_code=status, headers=headers or {},
                             mimetype="application/json", charset="utf-8")
