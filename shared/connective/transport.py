"""One call to Connective: rate token, request, retries, error mapping, and one log line per attempt.

Every attempt, retries included, prepares its request (opening the body), then takes a permit from
the connection's limiter and re-checks it immediately before the request is sent: a permit that is
past its deadline (the worker was descheduled, a wait for a slot ended late) is dropped, nothing is
sent, and the attempt takes a new one (counted as `connective.late_permit`). A 429 that still happens is honoured:
the limiter grants nothing in this process until Retry-After has passed, the attempt is repeated
after it if the caller can wait that long, and it is counted (`connective.throttled`). An attempt that
fails is tried again only when `RetryPolicy` allows it for the operation (see `operations.Replay`),
within `RetryConfig.max_attempts` and `RetryConfig.total_s`. A 429 waits as Retry-After says, but
never longer than the caller is willing to wait for a rate token: past that the caller gets
`ThrottledError` with the wait, so queue work can come back later instead of holding a worker.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from opentelemetry import context as context_api
from requests.adapters import HTTPAdapter

from shared.connective import counters, recording
from shared.connective.config import ConnectiveConfig
from shared.connective.errors import (
    AmbiguousCreateError,
    AmbiguousRequestError,
    ConnectiveError,
    ConnectiveHTTPError,
    TransportError,
    error_from_response,
)
from shared.connective.operations import ApiVersion, Operation, Replay
from shared.connective.ratelimit import RateLimitDeferred, RateLimiter
from shared.connective.retry import Clock, RetryPolicy, Verdict, request_was_sent, retry_after_s
from shared.connective.uploads import RequestBody

# Standard logging only: each line's data travels in `extra={"fields": ...}`, which the app's log
# formatter writes out, and the app's redaction filter scrubs (shared.logging).
logger = logging.getLogger("shared.connective")

_MAX_ERROR_BODY_BYTES = 64 * 1024


def build_session(config: ConnectiveConfig) -> requests.Session:
    session = requests.Session()
    # max_retries=0: urllib3 must not repeat anything on its own; `Transport` decides.
    adapter = HTTPAdapter(pool_connections=config.pool_connections, pool_maxsize=config.pool_maxsize, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.auth = (config.username, config.password)
    session.headers["Accept"] = "application/json"
    # Proxy and CA-bundle environment variables are read once here instead of on every request (requests
    # scans the whole environment per call otherwise, a third of a loopback call's time). Basic auth is
    # explicit, so the other thing trust_env brings (.netrc) is not wanted anyway.
    environment = session.merge_environment_settings(config.base_url, {}, None, None, None)
    session.proxies.update(environment["proxies"])
    session.verify = environment["verify"]
    session.trust_env = False
    return session


def log_event(event: str, level: int = logging.INFO, **fields: Any) -> None:
    if logger.isEnabledFor(level):
        logger.log(level, event, extra={"fields": fields}, stacklevel=2)


# Permits that may come back void in a row before the attempt gives up: each void one means the worker
# could not get from the grant to the socket within the send allowance, and the next may be as late.
_MAX_LATE_PERMITS = 5


@dataclass
class _Attempt:
    number: int
    started: float
    record: recording.AttemptRecord  # its dependency span and metrics (shared.connective.recording)
    send_delay_s: float | None = None


class Transport:
    """Sends the requests of one connection; shared by the clients made with `with_rate_wait`."""

    def __init__(self, config: ConnectiveConfig, limiter: RateLimiter, *, session: requests.Session | None = None,
                 clock: Clock | None = None, policy: RetryPolicy | None = None) -> None:
        self.config = config
        self.limiter = limiter
        self.session = session or build_session(config)
        self.clock = clock or Clock()
        self.policy = policy or RetryPolicy(config.retry)
        self._server = urlsplit(config.base_url).hostname or ""

    def url(self, operation: Operation, path: str) -> str:
        base = self.config.base_url_v31 if operation.version is ApiVersion.V31 else self.config.base_url
        return base + path

    def call(self, operation: Operation, *, path_params: dict[str, str] | None = None,
             query: dict[str, Any] | None = None, body: RequestBody | None = None, stream: bool = False,
             rate_wait_s: float, accept: str | None = None) -> requests.Response:
        """The successful response (body read unless `stream`), or the error the policy settles on."""
        path_params = path_params or {}
        url = self.url(operation, operation.render(**path_params))
        headers = {"Accept": accept} if accept else {}
        context: dict[str, Any] = {"operation": operation.name, "method": operation.method, "path": operation.path,
                   "package_id": path_params.get("package_id") or path_params.get("correlation_id")}
        first_sent_at: float | None = None
        possibly_applied = False
        number = 0
        while True:
            number += 1
            if body is not None and not body.can_resend():
                raise TransportError(f"{operation.name}: the document stream cannot be sent again",
                                     operation=operation.name)
            permit_wait_s = rate_wait_s if first_sent_at is None else min(rate_wait_s, self._remaining_s(first_sent_at))
            attempt, prepared = self._prepare_with_permit(
                operation, context, number, permit_wait_s, url, query, headers, body)
            if first_sent_at is None:
                first_sent_at = self.clock.monotonic()
            try:
                response = self.session.send(prepared, timeout=self.config.timeout, allow_redirects=True,
                                             **self.session.merge_environment_settings(
                                                 prepared.url, {}, True, None, None))
                if response.status_code < 400 and not stream:
                    response.content  # noqa: B018 - read the body inside the attempt, so a read timeout retries
            except requests.RequestException as exc:
                sent = request_was_sent(exc)
                verdict = self.policy.for_exception(sent, operation.replay)
                error: ConnectiveError = self._transport_error(operation, exc, verdict, sent)
                possibly_applied = possibly_applied or sent
                delay = self._retry_delay(verdict, number, first_sent_at, None)
                self._log(context, attempt, status=None, error_code=type(exc).__name__, retry_in_s=delay,
                          ambiguous=verdict is Verdict.AMBIGUOUS, possibly_applied=possibly_applied)
                if delay is None:
                    raise error from exc
                self.clock.sleep(delay)
                continue

            status = response.status_code
            if status < 400:
                self._log(context, attempt, status=status, error_code=None, retry_in_s=None)
                return response
            http_error = self._http_error(operation, response, possibly_applied)
            verdict = self.policy.for_status(status, operation.replay)
            retry_after = http_error.retry_after if status in (429, 503) else None
            if status == 429:
                # The gateway's window and ours disagree: nothing more leaves this process until it said.
                self.limiter.pause(retry_after or 0.0)
                counters.count(counters.THROTTLED, operation=operation.name)
            delay = self._retry_delay(verdict, number, first_sent_at, retry_after, rate_wait_s)
            self._log(context, attempt, status=status, error_code=http_error.error_code, retry_in_s=delay,
                      ambiguous=verdict is Verdict.AMBIGUOUS, possibly_applied=http_error.possibly_applied)
            if verdict is Verdict.AMBIGUOUS:
                raise self._ambiguous(operation, f"HTTP {status} after the request was sent", status) from http_error
            if delay is None:
                raise http_error
            if status in (500, 502, 504):
                possibly_applied = True
            self.clock.sleep(delay)

    def _prepare_with_permit(self, operation: Operation, context: dict[str, Any], number: int, wait_s: float,
                             url: str, query: dict[str, Any] | None, headers: dict[str, str],
                             body: RequestBody | None) -> tuple[_Attempt, requests.PreparedRequest]:
        """The request, ready to go, and a permit that is still good once the request is ready.

        The request is prepared first (the body opened, which for a blob document is a storage
        read, headers built), then the permit is taken and re-checked: only the connection pool and
        the socket lie between the check and the gateway, which the limiter's latency margin covers.
        """
        data, body_headers = body.open() if body is not None else (None, {})
        prepared = self.session.prepare_request(requests.Request(
            operation.method, url, params=query, data=data, headers={**headers, **body_headers}))
        late = 0
        waiting_since = time.perf_counter()
        while True:
            try:
                permit = self.limiter.acquire(wait_s)
            except RateLimitDeferred as deferred:
                recording.count_deferral(operation.name)
                log_event("connective.deferred", **context, attempt=number,
                          retry_after_s=round(deferred.retry_after_s, 3))
                raise
            started = time.perf_counter()
            if permit.leave():
                record = recording.AttemptRecord(
                    operation.name, operation.method, operation.path, self._server, context["package_id"], number,
                    rate_wait_s=started - waiting_since, parent=context_api.get_current(), started_ns=time.time_ns())
                return _Attempt(number, started, record, send_delay_s=permit.delay_s), prepared
            late += 1
            counters.count(counters.LATE_PERMIT, operation=operation.name)
            log_event("connective.late_permit", logging.WARNING, **context, attempt=number,
                      send_delay_ms=round((permit.delay_s or 0.0) * 1000, 1))
            if late >= _MAX_LATE_PERMITS:
                raise RateLimitDeferred(0.0, f"{late} rate permits in a row expired before the request could leave")

    def _remaining_s(self, first_sent_at: float | None) -> float:
        if first_sent_at is None:
            return self.config.retry.total_s
        return max(0.0, self.config.retry.total_s - (self.clock.monotonic() - first_sent_at))

    def _retry_delay(self, verdict: Verdict, number: int, first_sent_at: float | None,
                     retry_after: float | None, rate_wait_s: float | None = None) -> float | None:
        """Seconds to wait before the next attempt, or None when this attempt's error is final."""
        if verdict is not Verdict.RETRY or number >= self.config.retry.max_attempts:
            return None
        delay = retry_after if retry_after is not None else self.policy.backoff_s(number)
        if delay > self._remaining_s(first_sent_at):
            return None
        if retry_after is not None and rate_wait_s is not None and retry_after > rate_wait_s:
            return None  # the caller would rather come back later than wait this long
        return delay

    def _http_error(self, operation: Operation, response: requests.Response,
                    possibly_applied: bool) -> ConnectiveHTTPError:
        try:
            body = response.raw.read(_MAX_ERROR_BODY_BYTES, decode_content=True) or b""
        except Exception:  # the error status is the answer; an unreadable body must not hide it
            body = b""
        finally:
            response.close()
        retry_after = retry_after_s(response.headers.get("Retry-After"))
        if response.status_code == 429 and retry_after is None:
            retry_after = self.policy.backoff_s(1)
        return error_from_response(response.status_code, body, reason=response.reason or "",
                                   retry_after=retry_after, operation=operation.name,
                                   possibly_applied=possibly_applied)

    def _transport_error(self, operation: Operation, exc: Exception, verdict: Verdict, sent: bool) -> ConnectiveError:
        if verdict is Verdict.AMBIGUOUS:
            return self._ambiguous(operation, f"{type(exc).__name__} after the request was sent", None)
        stage = "after the request was sent" if sent else "before the request was sent"
        return TransportError(f"{operation.name}: {type(exc).__name__} {stage}", operation=operation.name)

    @staticmethod
    def _ambiguous(operation: Operation, what: str, status: int | None) -> AmbiguousRequestError:
        if operation.replay is Replay.CREATE:
            return AmbiguousCreateError(
                f"{operation.name}: {what}; it may or may not have been created. Not repeated: reconcile by "
                f"ExternalPackageReference before creating again", operation=operation.name, status=status)
        return AmbiguousRequestError(
            f"{operation.name}: {what}; it may or may not have been applied. Not repeated: re-read the package "
            f"before calling again", operation=operation.name, status=status)

    @staticmethod
    def _log(context: dict[str, Any], attempt: _Attempt, *, status: int | None, error_code: str | None,
             retry_in_s: float | None, ambiguous: bool = False, possibly_applied: bool = False) -> None:
        ok = status is not None and status < 400
        record = attempt.record
        record.ended_ns, record.status, record.error_code = time.time_ns(), status, error_code
        record.retry_in_s, record.ambiguous, record.possibly_applied = retry_in_s, ambiguous, possibly_applied
        recording.record(record)
        delay_ms = None if attempt.send_delay_s is None else round(attempt.send_delay_s * 1000, 1)
        log_event("connective.call", logging.INFO if ok else logging.WARNING, **context,
                  status=status, duration_ms=round((time.perf_counter() - attempt.started) * 1000, 1),
                  send_delay_ms=delay_ms,
                  attempt=attempt.number, error_code=error_code,
                  retry_in_s=None if retry_in_s is None else round(retry_in_s, 3))

