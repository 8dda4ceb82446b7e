"""JSON-lines exporters for spans, log records and metrics (`TELEMETRY_EXPORTER=jsonl`).

One file per process and signal under `TELEMETRY_JSONL_DIR` (`spans-<pid>.jsonl`, ...), so the local
host's worker processes never interleave their lines, and a test or an operator can read every
process's telemetry with `read_spans(directory)`. No OpenTelemetry exporter writes files, and the
console exporter's multi-line pretty print cannot be parsed back line by line.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult, MetricsData
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult


class _Sink:
    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()

    def write(self, entries: Sequence[dict[str, Any]]) -> None:
        lines = "".join(json.dumps(entry, default=str, ensure_ascii=False) + "\n" for entry in entries)
        with self._lock, self._path.open("a", encoding="utf-8") as handle:
            handle.write(lines)


def _hex(value: int, width: int) -> str:
    return format(value, f"0{width}x")


def span_entry(span: ReadableSpan) -> dict[str, Any]:
    context = span.get_span_context()
    assert context is not None
    return {
        "name": span.name,
        "kind": span.kind.name,
        "trace_id": _hex(context.trace_id, 32),
        "span_id": _hex(context.span_id, 16),
        "parent_span_id": _hex(span.parent.span_id, 16) if span.parent else None,
        "start_ns": span.start_time,
        "end_ns": span.end_time,
        "status": span.status.status_code.name,
        "status_description": span.status.description,
        "attributes": dict(span.attributes or {}),
        "events": [{"name": e.name, "attributes": dict(e.attributes or {})} for e in span.events],
        "links": [{"trace_id": _hex(link.context.trace_id, 32), "span_id": _hex(link.context.span_id, 16),
                   "attributes": dict(link.attributes or {})} for link in span.links],
        "scope": span.instrumentation_scope.name if span.instrumentation_scope else None,
        "pid": os.getpid(),
    }


class _SpanFile(SpanExporter):
    def __init__(self, sink: _Sink) -> None:
        self._sink = sink

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self._sink.write([span_entry(span) for span in spans])
        return SpanExportResult.SUCCESS


class _LogFile(LogRecordExporter):
    def __init__(self, sink: _Sink) -> None:
        self._sink = sink

    def export(self, batch: Sequence[Any]) -> LogRecordExportResult:
        entries = []
        for item in batch:
            record = item.log_record
            entries.append({"body": record.body, "severity": record.severity_text,
                            "trace_id": _hex(record.trace_id or 0, 32), "attributes": dict(record.attributes or {})})
        self._sink.write(entries)
        return LogRecordExportResult.SUCCESS

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True

    def shutdown(self) -> None:
        pass


class _MetricFile(MetricExporter):
    def __init__(self, sink: _Sink) -> None:
        super().__init__()
        self._sink = sink

    def export(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any) -> MetricExportResult:
        entries = []
        for resource_metrics in metrics_data.resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    for point in metric.data.data_points:
                        value = getattr(point, "value", None)
                        if value is None:
                            value = {"count": getattr(point, "count", None), "sum": getattr(point, "sum", None)}
                        entries.append({"metric": metric.name, "unit": metric.unit,
                                        "attributes": dict(point.attributes or {}), "value": value})
        if entries:
            self._sink.write(entries)
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        pass


class JsonLinesExporter:
    """The three exporters of one process, writing under `directory`."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        root = Path(directory)
        root.mkdir(parents=True, exist_ok=True)
        pid = os.getpid()
        self.spans = _SpanFile(_Sink(root / f"spans-{pid}.jsonl"))
        self.logs = _LogFile(_Sink(root / f"logs-{pid}.jsonl"))
        self.metrics = _MetricFile(_Sink(root / f"metrics-{pid}.jsonl"))


def read_entries(directory: str | os.PathLike[str], signal: str = "spans") -> list[dict[str, Any]]:
    """Every complete line written so far by every process under `directory` for `signal`."""
    entries: list[dict[str, Any]] = []
    for path in sorted(Path(directory).glob(f"{signal}-*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                try:
                    entries.append(json.loads(line))
                except json.JSONDecodeError:
                    continue  # a line still being written
    return entries
