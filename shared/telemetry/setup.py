"""Installs the OpenTelemetry SDK and exporters, once per process, when the settings ask for them.

- `APPLICATIONINSIGHTS_CONNECTION_STRING` set: the Azure Monitor distro (`azure-monitor-opentelemetry`)
  exports traces, logs and metrics to Application Insights, authenticating with the app's managed
  identity when `APPLICATIONINSIGHTS_AUTHENTICATION_STRING` names one (local auth is off in infra/).
- `TELEMETRY_EXPORTER` = `console` (stderr), `otlp` (an OTLP/HTTP collector at
  `OTEL_EXPORTER_OTLP_ENDPOINT`) or `jsonl` (JSON lines under `TELEMETRY_JSONL_DIR`, one file per
  process): the same telemetry without Azure, for `make run` and the tests.
- Neither: nothing is installed and nothing is exported; the API stays a no-op.

The Functions worker attaches each invocation's trace context when PYTHON_ENABLE_OPENTELEMETRY is
true. The app configures the exporters itself (rather than PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY,
which has the worker call the distro with its defaults) because every export must pass through the
redaction processors below, and the distro's `requests`/`urllib3` instrumentation must stay off: the
Connective client traces its own calls, and webhook subscriber URLs carry signatures in their query.
Storage calls are traced through azure-core's OpenTelemetry plugin.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from shared.config import Settings

SERVICE_NAME = "connective-signing"
# The distro's instrumentations this app does not want (see the module docstring); azure_sdk stays on.
_DISABLED_INSTRUMENTATIONS = ("requests", "urllib", "urllib3", "django", "fastapi", "flask", "psycopg2")
_log = logging.getLogger(__name__)


def wanted(settings: Settings) -> bool:
    return bool(settings.applicationinsights_connection_string) or _exporter(settings) != "none"


def _exporter(settings: Settings) -> str:
    return settings.telemetry_exporter


def configure_from_settings(settings: Settings | None = None) -> bool:
    """Install the providers the settings ask for. True when anything will be exported."""
    settings = settings or Settings.current()
    if not wanted(settings):
        return False
    from shared.telemetry.redaction import RedactingLogRecordProcessor, RedactingSpanProcessor

    span_processors: list[Any] = [RedactingSpanProcessor()]
    log_processors: list[Any] = [RedactingLogRecordProcessor()]
    metric_readers: list[Any] = []
    _add_local_exporter(settings, span_processors, log_processors, metric_readers)
    connection_string = settings.applicationinsights_connection_string
    if connection_string:
        _configure_azure_monitor(settings, connection_string, span_processors, log_processors, metric_readers)
    else:
        install_sdk(span_processors, log_processors, metric_readers)
    _route_logs_through_redaction()
    return True


class _DependencyLinesFilter(logging.Filter):
    """Keeps a successful Connective attempt's log line out of the exported logs: its dependency span
    carries the same facts (operation, status, attempt, duration). Failed attempts are still exported,
    and the JSON log lines are untouched. This halves what telemetry adds to a call."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or record.msg != "connective.call"


def _filter_exported_logs() -> None:
    from opentelemetry.instrumentation.logging.handler import LoggingHandler

    for handler in logging.getLogger().handlers:
        if isinstance(handler, LoggingHandler) and not any(isinstance(f, _DependencyLinesFilter)
                                                           for f in handler.filters):
            handler.addFilter(_DependencyLinesFilter())


def _configure_azure_monitor(settings: Settings, connection_string: str, span_processors: list[Any],
                             log_processors: list[Any], metric_readers: list[Any]) -> None:
    from azure.monitor.opentelemetry import configure_azure_monitor
    from opentelemetry.resource.detector.azure.functions import AzureFunctionsResourceDetector
    from opentelemetry.sdk.resources import Resource

    options: dict[str, Any] = {
        "connection_string": connection_string,
        # The Functions resource (cloud role name = the app's name), as the worker would set it up.
        "resource": Resource.create().merge(AzureFunctionsResourceDetector().detect()),
        "span_processors": span_processors,
        "log_record_processors": log_processors,
        "metric_readers": metric_readers,
        "logger_name": "",  # the root logger: every module's records, with their fields as attributes
        "instrumentation_options": {name: {"enabled": False} for name in _DISABLED_INSTRUMENTATIONS},
    }
    credential = _credential(settings.applicationinsights_authentication_string)
    if credential is not None:
        options["credential"] = credential
    configure_azure_monitor(**options)
    _record_client_calls_in_background()


def _credential(authentication: str) -> Any:
    """A managed identity credential for `Authorization=AAD[;ClientId=…]`, as the Functions host reads it."""
    parts = dict(part.split("=", 1) for part in authentication.split(";") if "=" in part)
    if parts.get("Authorization", "").upper() != "AAD":
        return None
    from azure.identity import ManagedIdentityCredential

    return ManagedIdentityCredential(client_id=parts.get("ClientId") or None)


def install_sdk(span_processors: list[Any], log_processors: list[Any], metric_readers: list[Any]) -> None:
    from azure.core.settings import settings as azure_settings
    from azure.core.tracing.ext.opentelemetry_span import OpenTelemetrySpan
    from opentelemetry import metrics, trace
    from opentelemetry._logs import set_logger_provider
    from opentelemetry.instrumentation.logging.handler import LoggingHandler
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    resource = Resource.create({"service.name": SERVICE_NAME})  # OTEL_SERVICE_NAME, when set, wins
    tracer_provider = TracerProvider(resource=resource)
    for processor in span_processors:
        tracer_provider.add_span_processor(processor)
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(MeterProvider(metric_readers=metric_readers, resource=resource))
    logger_provider = LoggerProvider(resource=resource)
    for log_processor in log_processors:
        logger_provider.add_log_record_processor(log_processor)
    set_logger_provider(logger_provider)
    logging.getLogger().addHandler(LoggingHandler(logger_provider=logger_provider))
    _filter_exported_logs()
    azure_settings.tracing_implementation = OpenTelemetrySpan  # storage calls become dependency spans
    _record_client_calls_in_background()


def _record_client_calls_in_background() -> None:
    """The Connective client's dependency spans and metrics are made off the calling thread from now
    on (shared.connective.recording): redaction and every span processor run there too."""
    from shared.connective import recording

    recording.record_in_background()


def _add_local_exporter(settings: Settings, span_processors: list[Any], log_processors: list[Any],
                        metric_readers: list[Any]) -> None:
    exporter = _exporter(settings)
    if exporter == "none":
        return
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, SimpleLogRecordProcessor
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    interval_ms = 5000
    if exporter == "console":
        from opentelemetry.sdk._logs.export import ConsoleLogRecordExporter
        from opentelemetry.sdk.metrics.export import ConsoleMetricExporter
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        # stderr, beside the JSON log lines: stdout may carry a tool's own output.
        span_processors.append(SimpleSpanProcessor(ConsoleSpanExporter(out=sys.stderr)))
        log_processors.append(SimpleLogRecordProcessor(ConsoleLogRecordExporter(out=sys.stderr)))
        metric_readers.append(PeriodicExportingMetricReader(ConsoleMetricExporter(out=sys.stderr),
                                                            export_interval_millis=interval_ms * 6))
    elif exporter == "otlp":
        try:
            from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        except ImportError as error:
            raise RuntimeError("TELEMETRY_EXPORTER=otlp needs opentelemetry-exporter-otlp-proto-http "
                               "(requirements-dev.txt)") from error
        span_processors.append(BatchSpanProcessor(OTLPSpanExporter()))
        log_processors.append(BatchLogRecordProcessor(OTLPLogExporter()))
        metric_readers.append(PeriodicExportingMetricReader(OTLPMetricExporter(), export_interval_millis=interval_ms))
    else:
        from shared.telemetry.jsonl import JsonLinesExporter

        directory = settings.telemetry_jsonl_dir
        sink = JsonLinesExporter(directory)
        # Written as each span ends, so a test can wait for the span it expects.
        span_processors.append(SimpleSpanProcessor(sink.spans))
        log_processors.append(SimpleLogRecordProcessor(sink.logs))
        metric_readers.append(PeriodicExportingMetricReader(sink.metrics, export_interval_millis=interval_ms))


def _route_logs_through_redaction() -> None:
    """The JSON console handler stays; library loggers that echo request headers stay at WARNING."""
    _filter_exported_logs()
    logging.getLogger("azure").setLevel(logging.WARNING)
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    logging.getLogger("azure.monitor.opentelemetry.exporter").setLevel(logging.WARNING)
