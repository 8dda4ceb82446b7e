"""Traces and metrics through the OpenTelemetry API only: cheap when nothing is configured.

Nothing here imports the SDK or an exporter. `shared.telemetry.setup` installs them, once per
process, when `APPLICATIONINSIGHTS_CONNECTION_STRING` or `TELEMETRY_EXPORTER` asks for it; until
then every span and instrument below is the API's no-op (the API's proxies switch to the real
providers once they are set, so instruments created at import time work afterwards).

One trace per package: the W3C trace context of the step that accepted a package travels with its
work, as a `traceparent` field in every queue message (`carrier_with_trace`), in the package row
(`PackageRecord.trace_parent`, for callbacks, which start outside the app), and it may arrive in the
uploaded blob's metadata (`traceparent`). Each step runs in a span whose parent is that context
(`package_step`), linked to the invocation that ran it, so Application Insights' end-to-end
transaction shows the package from the upload to the archive.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Iterator, Mapping
from typing import Any

from opentelemetry import context as context_api
from opentelemetry import metrics, trace
from opentelemetry.trace import Link, Status, StatusCode
from opentelemetry.trace import SpanKind as SpanKind  # the trigger modules name span kinds through this module
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from shared.connective import counters

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
# Span and meter names: what Application Insights shows as the cloud role's instrumentation scope.
SCOPE = "connective_signing"

_propagator = TraceContextTextMapPropagator()
_TRACEPARENT_SHAPE = re.compile(r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")

tracer = trace.get_tracer(SCOPE)
meter = metrics.get_meter(SCOPE)

# Instruments of the pipeline (the Connective client owns its own: shared.connective.transport).
package_transitions = meter.create_counter(
    "package.transitions", unit="{transition}", description="Package rows entering a status, by status.")
intake_rejections = meter.create_counter(
    "intake.rejections", unit="{input}", description="Inputs refused with an error report, by reason code.")
archive_bytes = meter.create_counter(
    "archive.bytes", unit="By", description="Bytes written to signed-documents/ by the archive.")
archive_duration = meter.create_histogram(
    "archive.duration", unit="s", description="Time one archive run took, downloads included.")
webhook_deliveries = meter.create_counter(
    "webhook.deliveries", unit="{delivery}", description="Webhook delivery attempts, by outcome.")
callback_auth_failures = meter.create_counter(
    "callback.auth_failures", unit="{request}", description="Callbacks and link requests refused for their token.")
# The client's rate-limit events (shared.connective.counters), which it counts without knowing of telemetry.
_client_events = {
    counters.THROTTLED: meter.create_counter(
        counters.THROTTLED, unit="{call}", description="429 answers from Connective, by operation."),
    counters.LATE_PERMIT: meter.create_counter(
        counters.LATE_PERMIT, unit="{permit}",
        description="Rate permits that expired before their request could leave; nothing was sent."),
}


def _count_client_event(name: str, attributes: dict[str, str]) -> None:
    instrument = _client_events.get(name)
    if instrument is not None:
        instrument.add(1, attributes)


counters.subscribe(_count_client_event)


def valid_traceparent(value: Any) -> str | None:
    """`value` when it is a well-formed W3C traceparent that names a trace, else None."""
    if not isinstance(value, str):
        return None
    value = value.strip().lower()
    if not _TRACEPARENT_SHAPE.match(value) or value.startswith("ff") or value[3:35] == "0" * 32:
        return None
    return value


def current_traceparent() -> str | None:
    """The W3C traceparent of the current span, or None when no span is being recorded."""
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return carrier.get(TRACEPARENT)


def carrier_with_trace(payload: dict[str, Any]) -> dict[str, Any]:
    """A queue message with the current trace context added (readers ignore fields they don't know).

    A message that already carries one keeps it: a message sent again travels in its package's trace.
    """
    if TRACEPARENT in payload:
        return payload
    traceparent = current_traceparent()
    return {**payload, TRACEPARENT: traceparent} if traceparent else payload


def _context_of(traceparent: str | None, tracestate: str | None = None) -> context_api.Context | None:
    valid = valid_traceparent(traceparent)
    if valid is None:
        return None
    carrier = {TRACEPARENT: valid}
    if tracestate:
        carrier[TRACESTATE] = tracestate
    extracted = _propagator.extract(carrier)
    return extracted if trace.get_current_span(extracted).get_span_context().is_valid else None


@contextlib.contextmanager
def invocation_trace(trace_context: Any, function_name: str | None) -> Iterator[None]:
    """The trace of one function invocation.

    The Azure Functions worker attaches the invocation's trace context itself when
    PYTHON_ENABLE_OPENTELEMETRY is true (the host sends it with the invocation request); otherwise
    it is read from `context.trace_context` here. Where neither gives a span (a host that sends no
    trace context), the invocation gets a root span of its own, so its work still forms one trace.
    """
    if trace.get_current_span().get_span_context().is_valid:
        yield
        return
    parent = _context_of(getattr(trace_context, "trace_parent", None), getattr(trace_context, "trace_state", None))
    if parent is not None:
        token = context_api.attach(parent)
        try:
            yield
        finally:
            context_api.detach(token)
        return
    with tracer.start_as_current_span(function_name or "invocation", kind=SpanKind.SERVER) as span:
        if function_name:
            span.set_attribute("faas.name", function_name)
        yield


@contextlib.contextmanager
def package_step(name: str, package_ref: str | None, traceparent: str | None, *,
                 kind: SpanKind = SpanKind.INTERNAL, **attributes: Any) -> Iterator[trace.Span]:
    """One step of a package's journey: a span in the package's trace, linked to the current invocation.

    Without a valid `traceparent` (the first step, or a row older than tracing), the step is a child
    of the current span and starts the package's trace.
    """
    invocation = trace.get_current_span().get_span_context()
    parent = _context_of(traceparent)
    links = []
    if parent is not None and invocation.is_valid and \
            invocation.trace_id != trace.get_current_span(parent).get_span_context().trace_id:
        links.append(Link(invocation, {"link.kind": "invocation"}))
    span_attributes = {key: value for key, value in attributes.items() if value is not None}
    if package_ref:
        span_attributes["package.ref"] = package_ref
    with tracer.start_as_current_span(name, context=parent, kind=kind, links=links,
                                      attributes=span_attributes) as span:
        yield span


def current_span() -> trace.Span:
    return trace.get_current_span()


def mark_error(span: trace.Span, description: str) -> None:
    span.set_status(Status(StatusCode.ERROR, description))


def trace_id_of(traceparent: str | None) -> str | None:
    """The trace id (Application Insights' operation id) in a traceparent."""
    valid = valid_traceparent(traceparent)
    return valid[3:35] if valid else None


_configured = threading.Event()


def ensure_configured() -> None:
    """Install exporters once per process when the settings ask for any (cheap after the first call)."""
    if _configured.is_set():
        return
    from shared.telemetry import setup  # the SDK and exporters load only when telemetry is wanted

    setup.configure_from_settings()
    _configured.set()


def reset_for_tests() -> None:
    _configured.clear()


def attributes_of(mapping: Mapping[str, Any]) -> dict[str, Any]:
    """Only the values OpenTelemetry accepts as attributes (str, bool, int, float), None left out."""
    return {k: v for k, v in mapping.items() if isinstance(v, str | bool | int | float)}


@contextlib.contextmanager
def invocation(context: Any) -> Iterator[None]:
    """Every function's outer scope: log fields (invocation id, function name) and the invocation's trace."""
    from shared.logging import invocation_scope

    ensure_configured()
    name = getattr(context, "function_name", None)
    with invocation_scope(getattr(context, "invocation_id", None), name), \
            invocation_trace(getattr(context, "trace_context", None), name):
        yield


def with_trace(payload: dict[str, Any], traceparent: str | None) -> dict[str, Any]:
    """`payload` carrying `traceparent` (a package's stored trace), unless it already carries one."""
    valid = valid_traceparent(traceparent)
    return payload if valid is None or TRACEPARENT in payload else {**payload, TRACEPARENT: valid}
