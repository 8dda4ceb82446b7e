"""Telemetry without the host: the client's dependency spans and metrics, trace context helpers,
redaction of what is exported, and that nothing is loaded or exported when no setting asks for it."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import context as context_api
from opentelemetry import trace
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import shared.telemetry as telemetry
from devtools.azurite import PROJECT_ROOT
from shared.config import Settings
from shared.connective import RateLimitDeferred, recording
from shared.connective.errors import AmbiguousCreateError, InvalidRequestError
from shared.logging import invocation_scope, log_event, package_scope, register_secrets
from shared.telemetry import setup
from shared.telemetry.redaction import RedactingLogRecordProcessor, RedactingSpanProcessor
from tests.client.fakes import PASSWORD, make_client

PACKAGE_ID = "0b7e8f4e-4a0e-4c57-9d4d-3f1c2b9a7a11"
STATUS_BODY = {"PackageStatus": "Pending", "PackageName": "p", "Stakeholders": [], "PackageDocuments": []}
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


class Exported:
    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        self.metrics = InMemoryMetricReader()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(RedactingSpanProcessor())
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.meter_provider = MeterProvider(metric_readers=[self.metrics])

    def counters(self, name: str) -> dict[tuple[tuple[str, Any], ...], Any]:
        data = self.metrics.get_metrics_data()
        found: dict[tuple[tuple[str, Any], ...], Any] = {}
        for resource in data.resource_metrics if data else []:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        for point in metric.data.data_points:
                            found[tuple(sorted((point.attributes or {}).items()))] = getattr(point, "value", point)
        return found


@pytest.fixture()
def exported(monkeypatch: pytest.MonkeyPatch) -> Iterator[Exported]:
    """SDK providers of this test's own, put in place of the API's no-ops the modules hold."""
    sink = Exported()
    tracer = sink.tracer_provider.get_tracer("test")
    meter = sink.meter_provider.get_meter("test")
    monkeypatch.setattr(recording, "_tracer", tracer)
    monkeypatch.setattr(telemetry, "tracer", tracer)
    monkeypatch.setattr(recording, "_background", None)  # inline unless a test asks for the background thread
    for name, factory in (("_calls", meter.create_counter), ("_deferrals", meter.create_counter),
                          ("_rate_wait", meter.create_histogram)):
        monkeypatch.setattr(recording, name, factory(getattr(recording, name)._name))
    for event in list(telemetry._client_events):  # the client's own counters, through the listener
        monkeypatch.setitem(telemetry._client_events, event, meter.create_counter(event))
    yield sink
    sink.tracer_provider.shutdown()
    sink.meter_provider.shutdown()


def test_each_attempt_is_one_client_span_with_the_calls_facts(exported: Exported) -> None:
    h = make_client()
    h.adapter.script((429, None, {"Retry-After": "1"}), (200, STATUS_BODY))
    h.client.get_package_status(PACKAGE_ID)

    spans = exported.spans.get_finished_spans()
    assert [s.name for s in spans] == ["Connective get_package_status"] * 2
    first, second = (dict(s.attributes or {}) for s in spans)
    assert all(s.kind is trace.SpanKind.CLIENT for s in spans)
    assert first["http.response.status_code"] == 429 and first["connective.attempt"] == 1
    assert first["connective.retry_in_s"] == 1.0 and spans[0].status.status_code is trace.StatusCode.ERROR
    assert second["http.response.status_code"] == 200 and second["connective.attempt"] == 2
    assert second["connective.package_id"] == PACKAGE_ID and second["connective.ambiguous"] is False
    assert {"connective.rate_wait_ms", "url.template", "server.address", "http.request.method"} <= set(second)
    counted = exported.counters("connective.calls")
    assert counted[(("operation", "get_package_status"), ("status", "429"))] == 1
    assert counted[(("operation", "get_package_status"), ("status", "200"))] == 1
    assert exported.counters("connective.throttled") == {(("operation", "get_package_status"),): 1}


def test_in_the_background_each_attempt_is_the_same_span_in_the_callers_trace(exported: Exported) -> None:
    """With an SDK installed the spans and metric points are made off the calling thread: same facts,
    same timing, the caller's span as parent, and redacted before any exporter sees them."""
    recording.record_in_background()
    register_secrets(["bg-secret-4242"])
    h = make_client()
    h.adapter.script((429, None, {"Retry-After": "1"}), (200, STATUS_BODY),
                     (400, {"ErrorCode": "Bad bg-secret-4242", "Message": "m"}))
    with telemetry.tracer.start_as_current_span("invocation") as invocation:
        h.client.get_package_status(PACKAGE_ID)
        with pytest.raises(InvalidRequestError):
            h.client.get_package_status(PACKAGE_ID)
    assert recording.flush()

    *spans, refused = [s for s in exported.spans.get_finished_spans() if s.name.startswith("Connective ")]
    assert "bg-secret-4242" not in json.dumps(dict(refused.attributes or {})) + str(refused.status.description)
    assert dict(refused.attributes or {})["http.response.status_code"] == 400
    assert [dict(s.attributes or {})["connective.attempt"] for s in spans] == [1, 2]
    assert [dict(s.attributes or {})["http.response.status_code"] for s in spans] == [429, 200]
    parent = invocation.get_span_context()
    for span in spans:
        assert span.parent is not None and span.parent.span_id == parent.span_id
        assert span.context is not None and span.context.trace_id == parent.trace_id
        assert span.start_time is not None and span.end_time is not None
        assert invocation.start_time is not None and invocation.end_time is not None  # type: ignore[attr-defined]
        assert invocation.start_time <= span.start_time <= span.end_time <= invocation.end_time  # type: ignore[attr-defined]
    assert spans[0].end_time <= spans[1].start_time  # type: ignore[operator]
    assert spans[0].status.status_code is trace.StatusCode.ERROR
    counted = exported.counters("connective.calls")
    assert counted[(("operation", "get_package_status"), ("status", "429"))] == 1
    assert counted[(("operation", "get_package_status"), ("status", "200"))] == 1


def test_the_background_thread_survives_a_failing_emit_and_keeps_order(
        exported: Exported, monkeypatch: pytest.MonkeyPatch) -> None:
    recording.record_in_background()
    emitted: list[int] = []
    real_emit = recording.emit

    def flaky(record: recording.AttemptRecord) -> None:
        if record.number == 2:
            raise RuntimeError("exporter bug")
        emitted.append(record.number)
        real_emit(record)

    monkeypatch.setattr(recording, "emit", flaky)
    parent = context_api.get_current()
    for number in (1, 2, 3):
        recording.record(recording.AttemptRecord("get_package_status", "GET", "/p", "h", None, number, 0.0,
                                                 parent, started_ns=1, ended_ns=2, status=200))
    assert recording.flush()
    assert emitted == [1, 3]


def test_an_ambiguous_create_says_so_and_carries_no_body(exported: Exported) -> None:
    h = make_client()
    h.adapter.script((500, {"ErrorCode": "Boom", "Message": "secret-ish body text"}))
    with pytest.raises(AmbiguousCreateError):
        h.client.create_package({"initiator": "a@b.c", "package_name": "Contract"})
    (span,) = exported.spans.get_finished_spans()
    attributes = dict(span.attributes or {})
    assert attributes["connective.ambiguous"] is True and attributes["http.response.status_code"] == 500
    assert "secret-ish body text" not in json.dumps(attributes) + str(span.status.description)
    assert PASSWORD not in json.dumps(attributes)


def test_a_deferral_sends_nothing_and_is_counted(exported: Exported) -> None:
    class NoTokens:
        def acquire(self, max_wait_s: float) -> None:
            raise RateLimitDeferred(3.0)

    h = make_client(limiter=NoTokens())
    with pytest.raises(RateLimitDeferred):
        h.client.get_package_status(PACKAGE_ID)
    assert exported.spans.get_finished_spans() == ()
    assert exported.counters("connective.deferrals") == {(("operation", "get_package_status"),): 1}


def test_package_steps_continue_the_stored_trace_and_link_the_invocation(exported: Exported) -> None:
    with telemetry.tracer.start_as_current_span("invocation"), \
            telemetry.package_step("package.archive", "inb-abc", TRACEPARENT) as step:
        assert telemetry.current_traceparent() is not None
        message = telemetry.carrier_with_trace({"packageRef": "inb-abc"})
    context = step.get_span_context()
    assert format(context.trace_id, "032x") == TRACEPARENT.split("-")[1]
    assert message["traceparent"].split("-")[1] == TRACEPARENT.split("-")[1]
    archive = next(s for s in exported.spans.get_finished_spans() if s.name == "package.archive")
    assert archive.parent is not None and format(archive.parent.span_id, "016x") == TRACEPARENT.split("-")[2]
    assert archive.links and archive.links[0].context.trace_id != context.trace_id
    assert archive.attributes and archive.attributes["package.ref"] == "inb-abc"


def test_a_step_without_a_stored_trace_starts_one_under_the_invocation(exported: Exported) -> None:
    with telemetry.tracer.start_as_current_span("invocation") as invocation, \
            telemetry.package_step("package.intake", "inb-abc", "not-a-traceparent") as step:
        pass
    assert step.get_span_context().trace_id == invocation.get_span_context().trace_id


def test_trace_context_helpers() -> None:
    assert telemetry.valid_traceparent(TRACEPARENT.upper()) == TRACEPARENT
    for bad in (None, "", "00-" + "0" * 32 + "-b7ad6b7169203331-01", "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b71692"
                "03331-01", "00-xyz", 42):
        assert telemetry.valid_traceparent(bad) is None
    assert telemetry.carrier_with_trace({"a": 1}) == {"a": 1}  # no span: no field
    assert telemetry.with_trace({"a": 1}, TRACEPARENT) == {"a": 1, "traceparent": TRACEPARENT}
    assert telemetry.with_trace({"a": 1, "traceparent": "kept"}, TRACEPARENT)["traceparent"] == "kept"
    assert telemetry.with_trace({"a": 1}, None) == {"a": 1}
    assert telemetry.trace_id_of(TRACEPARENT) == TRACEPARENT.split("-")[1]


def test_exported_spans_are_redacted() -> None:
    register_secrets(["hunter2-registered"])
    sink = Exported()
    with sink.tracer_provider.get_tracer("t").start_as_current_span("s") as span:
        span.set_attributes({"callback.token": "abc", "url.full": "https://x/hook?sig=SIGNATURE&a=1",
                             "note": "pw hunter2-registered", "auth": "Basic dXNlcjpwYXNz", "count": 3})
        span.set_status(trace.Status(trace.StatusCode.ERROR, "failed with hunter2-registered"))
    (exported,) = sink.spans.get_finished_spans()
    text = json.dumps(dict(exported.attributes or {})) + str(exported.status.description)
    for secret in ("abc", "SIGNATURE", "hunter2-registered", "dXNlcjpwYXNz"):
        assert secret not in text
    assert exported.attributes and exported.attributes["count"] == 3


def test_log_records_carry_their_fields_as_redacted_attributes() -> None:
    provider = LoggerProvider()
    records = InMemoryLogRecordExporter()
    provider.add_log_record_processor(RedactingLogRecordProcessor())
    provider.add_log_record_processor(SimpleLogRecordProcessor(records))
    logger = logging.getLogger("tests.telemetry.fields")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    handler = LoggingHandler(logger_provider=provider)
    logger.addHandler(handler)
    try:
        with invocation_scope("inv-1", "archive_signed_package"), package_scope("inb-abc"):
            log_event(logger, "archive.done", files=3, token="tok-123", url="https://h/p?code=KEY123",
                      document=b"%PDF-1.7 bytes", nested={"password": "pw-1"})
    finally:
        logger.removeHandler(handler)
    (record,) = [r.log_record for r in records.get_finished_logs()]
    attributes = dict(record.attributes or {})
    assert record.body == "archive.done"
    assert attributes["files"] == 3 and attributes["package_ref"] == "inb-abc"
    assert attributes["invocation_id"] == "inv-1" and attributes["function"] == "archive_signed_package"
    assert "fields" not in attributes
    text = json.dumps(attributes, default=str)
    for secret in ("tok-123", "KEY123", "%PDF", "pw-1"):
        assert secret not in text


def test_nothing_is_installed_without_a_setting() -> None:
    assert setup.configure_from_settings(Settings({})) is False
    assert setup.wanted(Settings({"TELEMETRY_EXPORTER": "console"}))
    assert setup.wanted(Settings({"APPLICATIONINSIGHTS_CONNECTION_STRING": "InstrumentationKey=x"}))
    with pytest.raises(ValueError, match="TELEMETRY_EXPORTER"):
        setup.wanted(Settings({"TELEMETRY_EXPORTER": "zipkin"}))


def test_cold_start_loads_no_sdk_or_exporter_without_a_setting() -> None:
    """Importing the app and running an invocation's telemetry scope stays on the API alone."""
    script = (
        "import sys, types, function_app\n"
        "from shared.telemetry import invocation\n"
        "ctx = types.SimpleNamespace(invocation_id='i', function_name='f', trace_context=None)\n"
        "with invocation(ctx):\n"
        "    pass\n"
        "loaded = [m for m in ('azure.monitor.opentelemetry', 'opentelemetry.sdk.trace',\n"
        "                      'opentelemetry.sdk.metrics', 'azure.core.tracing.ext.opentelemetry_span')\n"
        "          if m in sys.modules]\n"
        "print(','.join(loaded))\n"
    )
    env = {"PATH": "/usr/bin:/bin", "DocumentStorage": "UseDevelopmentStorage=true"}
    result = subprocess.run([sys.executable, "-c", script], cwd=PROJECT_ROOT, capture_output=True, text=True,
                            env=env, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


def test_installing_an_exporter_moves_the_clients_spans_off_the_calling_thread(tmp_path: Path) -> None:
    settings = {"TELEMETRY_EXPORTER": "jsonl", "TELEMETRY_JSONL_DIR": str(tmp_path)}
    script = (
        "from shared.config import Settings\n"
        "from shared.connective import recording\n"
        "from shared.telemetry import setup\n"
        "assert recording._background is None\n"
        f"setup.configure_from_settings(Settings({settings!r}))\n"
        "print(recording._background is not None)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=PROJECT_ROOT, capture_output=True, text=True,
                            env={"PATH": "/usr/bin:/bin"}, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"


def test_every_trigger_module_opens_its_invocation_through_telemetry() -> None:
    """`shared.telemetry.invocation` installs the exporters and the invocation's trace; the logging
    scope alone would leave a process that only ran such a function without telemetry."""
    for path in sorted((PROJECT_ROOT / "functions").glob("*.py")):
        text = path.read_text()
        assert "invocation_scope(" not in text, f"{path.name}: use shared.telemetry.invocation(context)"
