"""One entry point for every API function: find the operation, run it, answer problems.

Errors never leave as stack traces: an `ApiProblem` becomes its problem answer, a Connective error
the matching status (404, 409, 400, 429 with Retry-After, 502), and anything else a 500 problem
with a log line that has the details.
"""

from __future__ import annotations

import logging
import time

import azure.functions as func

from shared.api.context import ApiRequest
from shared.api.operations import find, methods_of
from shared.api.problems import ApiProblem, problem_response
from shared.config import Settings
from shared.connective import errors
from shared.logging import get_logger, log_event
from shared.pipeline import services
from shared.retrying import visibility_delay_s
from shared.storage.store import Store
from shared.telemetry import invocation

_log = get_logger(__name__)


def connective_problem(error: errors.ConnectiveError | errors.RetryLater) -> ApiProblem:
    if isinstance(error, errors.RetryLater):
        wait = visibility_delay_s(error)
        what = ("Connective is throttling calls" if isinstance(error, errors.ThrottledError)
                else "The Connective call budget is used up for now")
        return ApiProblem(429, f"{what}; retry in {wait} s.", headers={"Retry-After": str(wait)})
    if isinstance(error, errors.NotFoundError):
        return ApiProblem(404, f"Connective does not know this package: {error.message}")
    if isinstance(error, errors.ConflictError):
        return ApiProblem(409, f"Connective refused the action in the package's current state: {error.message}")
    if isinstance(error, errors.InvalidRequestError):
        return ApiProblem(400, f"Connective refused the request: {error.message}")
    if isinstance(error, errors.AuthenticationError):
        return ApiProblem(502, "Connective refused this app's credentials; an administrator must check them.")
    if isinstance(error, errors.ServerError):
        return ApiProblem(502, f"Connective failed (HTTP {error.status}); try again later.")
    return ApiProblem(502, "Connective could not be reached or gave no usable answer; try again later.")


def handle(route: str, req: func.HttpRequest, context: func.Context | None = None, *,
           settings: Settings | None = None, store: Store | None = None) -> func.HttpResponse:
    started = time.monotonic()
    with invocation(context):
        response = _answer(route, req, settings or services.settings(), store)
        log_event(_log, "api.request", method=req.method, route=route, status=response.status_code,
                  duration_ms=round((time.monotonic() - started) * 1000))
        return response


def _answer(route: str, req: func.HttpRequest, settings: Settings, store: Store | None) -> func.HttpResponse:
    operation = find(route, req.method or "GET", dict(req.route_params))
    try:
        if operation is None:
            allowed = methods_of(route)
            if allowed and req.method.upper() not in allowed:
                raise ApiProblem(405, f"Use {' or '.join(allowed)} on this URL.", headers={"Allow": ", ".join(allowed)})
            raise ApiProblem(404, "There is no such resource.")
        return operation.handler(ApiRequest(req, settings, store))
    except ApiProblem as problem:
        return problem_response(problem)
    except (errors.ConnectiveError, errors.RetryLater) as error:
        log_event(_log, "api.connective_error", logging.WARNING, route=route, error=type(error).__name__,
                  detail=str(error)[:300])
        return problem_response(connective_problem(error))
    except Exception:
        _log.error("api.unhandled_error", exc_info=True, extra={"fields": {"route": route}})
        return problem_response(ApiProblem(500, "The request failed inside the app; it was logged. Try again later."))
