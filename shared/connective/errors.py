"""The client's error tree.

    ConnectiveError
    ├── ConnectiveHTTPError(status, error_code, message)   Connective answered with an error status
    │   ├── AuthenticationError      401, 403
    │   ├── InvalidRequestError      400 (Send Reminders also uses 400 for "package not found")
    │   ├── NotFoundError            404
    │   ├── ConflictError            409 (wrong status, not signed, ...): see `error_code`
    │   ├── ThrottledError           429, `retry_after_s` seconds (also a RetryLater)
    │   └── ServerError              5xx
    └── TransportError                no usable answer (connection refused or dropped, timeout)
        └── AmbiguousRequestError     a non-idempotent call was sent and its outcome is unknown
            └── AmbiguousCreateError  ... and it was a create: reconcile by ExternalPackageReference
    RetryLater(retry_after_s)         nothing was done; try again in `retry_after_s` seconds
    ├── ThrottledError                (above) the gateway said 429
    └── RateLimitDeferred             no rate token within the allowed wait; nothing was sent
        └── RateLimiterUnavailable    the shared limiter's state cannot be read or written

Callers that come back later (queue work, HTTP 429 answers) catch `RetryLater` and read
`retry_after_s`, whatever the reason.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = [
    "AmbiguousCreateError",
    "AmbiguousRequestError",
    "AuthenticationError",
    "ConflictError",
    "ConnectiveError",
    "ConnectiveHTTPError",
    "InvalidRequestError",
    "NotFoundError",
    "RateLimitDeferred",
    "RateLimiterUnavailable",
    "RetryLater",
    "ServerError",
    "ThrottledError",
    "TransportError",
    "error_from_response",
]

_MAX_MESSAGE_CHARS = 500


class RetryLater(Exception):
    """The call did nothing that matters; it may be tried again in `retry_after_s` seconds."""

    retry_after_s: float


class RateLimitDeferred(RetryLater):
    """No rate token within the allowed wait; nothing was sent. Come back in `retry_after_s` seconds."""

    def __init__(self, retry_after_s: float, reason: str = "no rate token within the allowed wait") -> None:
        self.retry_after_s = max(0.0, float(retry_after_s))
        super().__init__(f"{reason}; retry in {self.retry_after_s:.2f} s")


class RateLimiterUnavailable(RateLimitDeferred):
    """The shared limiter's state cannot be read or written, so no token can be granted safely."""


class ConnectiveError(Exception):
    """Any failure of a Connective call. `operation` names the client method that failed."""

    def __init__(self, message: str, *, operation: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.operation = operation


class ConnectiveHTTPError(ConnectiveError):
    """Connective answered with an error status.

    `error_code` is the body's ErrorCode, for example `Package.NotSigned:<id>`; `error_code_base` is the
    part before the colon. `possibly_applied` is true when an earlier attempt of the same call was sent
    and got no clear answer, so its effect may already be in place (a retried status change answering
    409, for example). `retry_after` is the answer's Retry-After in seconds, when it had one.
    """

    def __init__(
        self,
        status: int,
        error_code: str | None,
        message: str,
        *,
        operation: str | None = None,
        possibly_applied: bool = False,
        retry_after: float | None = None,
    ) -> None:
        self.status = status
        self.error_code = error_code
        self.possibly_applied = possibly_applied
        self.retry_after = retry_after
        label = f"{operation}: " if operation else ""
        code = f" {error_code}" if error_code else ""
        super().__init__(f"{label}HTTP {status}{code}: {message}", operation=operation)
        self.message = message

    @property
    def error_code_base(self) -> str | None:
        return self.error_code.split(":", 1)[0] if self.error_code else None


class AuthenticationError(ConnectiveHTTPError):
    """401 or 403: wrong API user or password, or the user lacks the right."""


class InvalidRequestError(ConnectiveHTTPError):
    """400: invalid or missing parameters."""


class NotFoundError(ConnectiveHTTPError):
    """404: unknown package, document, location or correlation id."""


class ConflictError(ConnectiveHTTPError):
    """409: the package's state or configuration does not allow the call."""


class ThrottledError(ConnectiveHTTPError, RetryLater):
    """429: over the connection's budget. `retry_after_s` (= `retry_after`) is the wait asked for, in seconds."""

    retry_after: float

    def __init__(self, status: int, error_code: str | None, message: str, *, retry_after: float,
                 operation: str | None = None, possibly_applied: bool = False) -> None:
        super().__init__(status, error_code, message, operation=operation, possibly_applied=possibly_applied,
                         retry_after=retry_after)
        self.retry_after_s = max(0.0, retry_after)


class ServerError(ConnectiveHTTPError):
    """5xx from Connective or a gateway in front of it."""


class TransportError(ConnectiveError):
    """No usable answer: the connection failed, dropped or timed out, or a download broke off."""


class AmbiguousRequestError(TransportError):
    """A call that must not be repeated blindly was sent, and whether Connective applied it is unknown.

    The client does not retry it. The caller finds out (re-reads the package) before doing it again.
    `status` is the HTTP status that made it ambiguous (500, 502, 504), or None for a timeout or a
    dropped connection.
    """

    def __init__(self, message: str, *, operation: str | None = None, status: int | None = None) -> None:
        super().__init__(message, operation=operation)
        self.status = status


class AmbiguousCreateError(AmbiguousRequestError):
    """A create (package, instant package, document, proof) may or may not exist now.

    Reconcile by ExternalPackageReference (Get Package List) before creating again.
    """


_STATUS_CLASSES: dict[int, type[ConnectiveHTTPError]] = {
    400: InvalidRequestError,
    401: AuthenticationError,
    403: AuthenticationError,
    404: NotFoundError,
    409: ConflictError,
}


def parse_error_body(body: bytes, reason: str = "") -> tuple[str | None, str]:
    """ErrorCode and message from an error body.

    Connective v3 documents one `{ErrorCode, Message}` object; v4 and some gateways answer an array and
    spell the text `ErrorMessage`. All are accepted; the first entry of an array gives the code and the
    messages are joined. A body that is not JSON becomes the message, shortened.
    """
    text = body.decode("utf-8", errors="replace").strip()
    try:
        parsed: Any = json.loads(text) if text else None
    except ValueError:
        parsed = None
    entries = parsed if isinstance(parsed, list) else [parsed] if isinstance(parsed, dict) else []
    entries = [entry for entry in entries if isinstance(entry, dict)]
    if not entries:
        return None, (text[:_MAX_MESSAGE_CHARS] or reason or "no error body")
    codes = [_field(entry, "ErrorCode") for entry in entries]
    messages = [_field(entry, "Message") or _field(entry, "ErrorMessage") for entry in entries]
    code = next((c for c in codes if c), None)
    message = "; ".join(m for m in messages if m) or reason or "no error message"
    return code, message[:_MAX_MESSAGE_CHARS]


def _field(entry: dict[str, Any], name: str) -> str | None:
    """A field of an error entry, whatever the case of its name (the server is .NET)."""
    for key, value in entry.items():
        if key.lower() == name.lower() and value is not None:
            return str(value)
    return None


def error_from_response(
    status: int,
    body: bytes,
    *,
    reason: str = "",
    retry_after: float | None = None,
    operation: str | None = None,
    possibly_applied: bool = False,
) -> ConnectiveHTTPError:
    code, message = parse_error_body(body, reason)
    if status == 429:
        return ThrottledError(status, code, message, retry_after=retry_after if retry_after is not None else 1.0,
                              operation=operation, possibly_applied=possibly_applied)
    error_class = ServerError if status >= 500 else _STATUS_CLASSES.get(status, ConnectiveHTTPError)
    return error_class(status, code, message, operation=operation, possibly_applied=possibly_applied,
                       retry_after=retry_after)
