"""Redaction of everything exported: the first span and log processors, ahead of every exporter.

The same rules as the JSON log lines (shared.logging): sensitive field names, Basic/Bearer
credentials, secrets in URL queries and every registered secret value are replaced, and bytes are
never exported. `log_event`'s structured fields become log record attributes here, so they reach
Application Insights as customDimensions.
"""

from __future__ import annotations

import json
from typing import Any

from opentelemetry.sdk._logs import LogRecordProcessor
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanProcessor
from opentelemetry.trace import Status

from shared.logging import REDACTED, context_fields, is_sensitive_key, redact_fields, redact_text


def _redact_attribute(key: str, value: Any) -> Any:
    """A value OpenTelemetry accepts, redacted as a log field would be."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return REDACTED if is_sensitive_key(key) else redact_text(value)
    redacted = redact_fields({key: value})[key]
    if isinstance(redacted, list | tuple) and all(isinstance(v, str | bool | int | float) for v in redacted):
        return list(redacted)
    return redacted if isinstance(redacted, str) else redact_text(json.dumps(redacted, default=str))


def redact_attributes(attributes: Any) -> dict[str, Any]:
    return {key: _redact_attribute(key, value) for key, value in (attributes or {}).items() if value is not None}


class RedactingSpanProcessor(SpanProcessor):
    """First span processor: the exporters after it see attributes and events already redacted."""

    def on_end(self, span: ReadableSpan) -> None:
        span._attributes = redact_attributes(span.attributes)  # the snapshot every exporter reads
        if span.events:
            span._events = tuple(Event(event.name, redact_attributes(event.attributes), event.timestamp)
                                 for event in span.events)
        if span.status.description:
            span._status = Status(span.status.status_code, redact_text(span.status.description))

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class RedactingLogRecordProcessor(LogRecordProcessor):
    """First log processor: the structured fields of `log_event` become attributes (customDimensions),
    redacted the same way as the JSON log lines; the message and any exception text are redacted too."""

    def on_emit(self, log_record: Any) -> None:
        record = log_record.log_record
        attributes = dict(record.attributes or {})
        fields = attributes.pop("fields", None)
        if isinstance(fields, dict):
            for key, value in fields.items():
                attributes.setdefault(str(key), value)
        for key, value in context_fields().items():
            attributes.setdefault(key, value)
        cleaned = redact_attributes(attributes)
        record.attributes.clear()
        record.attributes.update(cleaned)
        if isinstance(record.body, str):
            record.body = redact_text(record.body)
        elif record.body is not None and not isinstance(record.body, bool | int | float):
            record.body = REDACTED

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
