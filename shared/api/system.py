"""Health and the OpenAPI definition."""

from __future__ import annotations

import azure.functions as func
from azure.core.exceptions import AzureError

from shared.api.context import ApiRequest, json_response
from shared.api.models import Health
from shared.logging import get_logger, log_event

_log = get_logger(__name__)


def health(request: ApiRequest) -> func.HttpResponse:
    """Storage reachability only: one point read on the package table, no Connective call."""
    try:
        request.store.packages.get("health-probe")
    except (AzureError, ValueError) as error:
        log_event(_log, "api.health.storage_unreachable", error=type(error).__name__)
        return json_response(Health(status="degraded", storage=type(error).__name__), 503)
    return json_response(Health(status="ok", storage="ok"))


def openapi_document(request: ApiRequest) -> func.HttpResponse:
    from shared.api.openapi import build_openapi

    return json_response(build_openapi(request.settings))
