"""Each attempt's dependency span and metric points, made after the attempt from facts it captured.

Traces and metrics go through the OpenTelemetry API only (as azure-core does): no-ops until the app
installs an SDK. One CLIENT span per attempt, i.e. per request sent (Application Insights shows it
as a dependency); its attributes never hold a body, a credential or a document byte.

The attempt itself only captures what the span and metrics need (`AttemptRecord`: the caller's trace
context, wall-clock start and end, status, attempt number, rate wait, ambiguity flags). The span is
built from it afterwards with those timestamps and that parent, so it is the same span either way.
Once an SDK is installed (`record_in_background`), that work (span creation, the span processors'
`on_end` with redaction, metric aggregation) runs on one background thread instead of the calling
thread: the SDK does all of it on the caller's thread otherwise, several times the cost of the rest
of the client's own work on a call. No OpenTelemetry API or SDK piece defers span creation, hence
this module. The queue is drained as it fills; `flush` waits for what was recorded so far, and runs
at interpreter exit before the SDK's providers shut down.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from dataclasses import dataclass
from queue import SimpleQueue
from typing import Any

from opentelemetry import context as context_api
from opentelemetry import metrics, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

_tracer = trace.get_tracer("shared.connective")
_meter = metrics.get_meter("shared.connective")
_calls = _meter.create_counter(
    "connective.calls", unit="{call}",
    description="Requests sent to Connective (each took a rate token), by operation and status.")
_deferrals = _meter.create_counter("connective.deferrals", unit="{call}",
                                   description="Calls that found no rate token within their wait; nothing was sent.")
_rate_wait = _meter.create_histogram("connective.rate_wait", unit="s",
                                     description="Time spent waiting for a rate token.")

_log = logging.getLogger(__name__)
# Records waiting for the background thread beyond which the caller builds its own span instead:
# back-pressure, never loss (at the API's rate limit the queue holds a handful at most).
_MAX_QUEUED = 10_000


@dataclass(slots=True)
class AttemptRecord:
    """What one attempt's span and metrics say, captured on the calling thread."""

    operation: str
    method: str
    path: str
    server: str
    package_id: str | None
    number: int
    rate_wait_s: float
    parent: context_api.Context
    started_ns: int
    ended_ns: int = 0
    status: int | None = None
    error_code: str | None = None
    retry_in_s: float | None = None
    ambiguous: bool = False
    possibly_applied: bool = False


def count_deferral(operation: str) -> None:
    _deferrals.add(1, {"operation": operation})


def emit(record: AttemptRecord) -> None:
    """The attempt's metric points and its dependency span: what was called and how long it waited."""
    status = record.status
    _calls.add(1, {"operation": record.operation, "status": str(status) if status is not None else "error"},
               context=record.parent)
    _rate_wait.record(record.rate_wait_s, {"operation": record.operation}, context=record.parent)
    attributes: dict[str, Any] = {
        "connective.operation": record.operation, "http.request.method": record.method,
        "url.template": record.path, "server.address": record.server,
        "connective.attempt": record.number, "connective.rate_wait_ms": round(record.rate_wait_s * 1000, 3),
        "connective.ambiguous": record.ambiguous, "connective.possibly_applied": record.possibly_applied,
    }
    if record.package_id:
        attributes["connective.package_id"] = record.package_id
    if status is not None:
        attributes["http.response.status_code"] = status
    if record.error_code:
        attributes["connective.error_code"] = record.error_code
    if record.retry_in_s is not None:
        attributes["connective.retry_in_s"] = round(record.retry_in_s, 3)
    span = _tracer.start_span(f"Connective {record.operation}", context=record.parent, kind=SpanKind.CLIENT,
                              attributes=attributes, start_time=record.started_ns)
    if status is None or status >= 400:
        span.set_status(Status(StatusCode.ERROR, record.error_code or f"HTTP {status}"))
    span.end(end_time=record.ended_ns)


class _Background:
    """One daemon thread emitting records in the order they were submitted."""

    def __init__(self) -> None:
        self._queue: SimpleQueue[AttemptRecord | threading.Event] = SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, record: AttemptRecord) -> None:
        if self._thread is None:
            self._start()
        if self._queue.qsize() >= _MAX_QUEUED:
            emit(record)
            return
        self._queue.put(record)

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Wait until everything submitted so far is emitted; False if that took longer than `timeout_s`."""
        if self._thread is None:
            return True
        done = threading.Event()
        self._queue.put(done)
        return done.wait(timeout_s)

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                thread = threading.Thread(target=self._run, name="connective-telemetry", daemon=True)
                thread.start()
                self._thread = thread
                atexit.register(self.flush)  # registered after the SDK's providers, so it runs before they shut down

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if isinstance(item, threading.Event):
                item.set()
                continue
            try:
                emit(item)
            except Exception:  # telemetry must not stop: the next record is as good as ever
                _log.exception("connective.telemetry_failed")

    def after_fork(self) -> None:
        """A forked child has the queue but not the thread: start afresh."""
        self._queue = SimpleQueue()
        self._thread = None
        self._lock = threading.Lock()


_background: _Background | None = None


def record_in_background(enabled: bool = True) -> None:
    """From now on, emit every attempt's span and metrics on the background thread (or, disabled, inline)."""
    global _background
    _background = _Background() if enabled else None


def flush(timeout_s: float = 5.0) -> bool:
    """Wait until every attempt recorded so far has its span and metric points (True at once when inline)."""
    background = _background
    return background.flush(timeout_s) if background is not None else True


def record(attempt: AttemptRecord) -> None:
    background = _background
    if background is None:
        emit(attempt)
    else:
        background.submit(attempt)


def _after_fork_in_child() -> None:
    if _background is not None:
        _background.after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)
