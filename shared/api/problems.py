"""RFC 7807 problem details: every error the API returns is `application/problem+json`."""

from __future__ import annotations

import json
from typing import Any

import azure.functions as func
from pydantic import BaseModel, ConfigDict, Field

PROBLEM_CONTENT_TYPE = "application/problem+json"
_TITLES = {
    400: "Bad request", 401: "Unauthorized", 404: "Not found", 405: "Method not allowed", 409: "Conflict",
    413: "Request too large", 415: "Unsupported media type", 429: "Too many requests",
    500: "Internal error", 502: "Bad gateway", 503: "Service unavailable",
}


class FieldError(BaseModel):
    model_config = ConfigDict(title="Field Error")

    field: str = Field(title="Field", description="Where the error is: a dotted path into the request body, "
                                                  "or the name of a parameter.")
    message: str = Field(title="Message", description="What is wrong with it.")


class Problem(BaseModel):
    """An error answer (RFC 7807)."""

    model_config = ConfigDict(title="Problem")

    type: str = Field(default="about:blank", title="Problem Type",
                      description="A URI that identifies the kind of problem.")
    title: str = Field(title="Title", description="Short summary of the kind of problem.")
    status: int = Field(title="HTTP Status", description="The HTTP status code of this answer.")
    detail: str = Field(title="Detail", description="What went wrong with this request, in plain words.")
    errors: list[FieldError] | None = Field(default=None, title="Field Errors",
                                            description="One entry per invalid field, for validation errors.")


class ApiProblem(Exception):
    """Raised anywhere in a handler; the dispatcher turns it into a problem answer."""

    def __init__(self, status: int, detail: str, *, errors: list[FieldError] | None = None,
                 headers: dict[str, str] | None = None, problem_type: str = "about:blank") -> None:
        super().__init__(detail)
        self.problem = Problem(type=problem_type, title=_TITLES.get(status, "Error"), status=status, detail=detail,
                               errors=errors)
        self.headers = headers or {}

    @property
    def status(self) -> int:
        return self.problem.status


def problem_response(problem: ApiProblem) -> func.HttpResponse:
    body: dict[str, Any] = problem.problem.model_dump(exclude_none=True)
    return func.HttpResponse(json.dumps(body), status_code=problem.status, headers=problem.headers,
                             mimetype=PROBLEM_CONTENT_TYPE, charset="utf-8")
