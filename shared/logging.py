"""Structured logs: one JSON object per line, with the invocation id and package reference attached.

Every module logs through `get_logger(__name__)` and `log_event(logger, "event.name", key=value)`.
The invocation id and package reference live in context variables, so a function binds them once
(`invocation_scope`, `package_scope`) and every line written underneath carries them, including the
Connective client's per-call lines (the client logs through the standard `logging` module with
`extra={"fields": ...}` and knows nothing of this module). Redaction is a `logging.Filter` on the
output handlers (`install_redaction`, which the app calls when it loads and `configure` calls for its
handler): every record is scrubbed before any handler writes it, whichever module logged it.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import json
import logging
import re
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

_invocation_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("invocation_id", default=None)
_function_name: contextvars.ContextVar[str | None] = contextvars.ContextVar("function_name", default=None)
_package_ref: contextvars.ContextVar[str | None] = contextvars.ContextVar("package_ref", default=None)

REDACTED = "***"
# Field names whose values are never logged, whatever they hold.
_SENSITIVE_KEYS = re.compile(
    r"(^|[._-])(authorization|password|secret|secrets|token|api[-_]?key)$|^(sig|signature|document|content)$", re.I
)
_BASIC_AUTH = re.compile(r"(Basic|Bearer)\s+[A-Za-z0-9+/=._-]+", re.I)
_URL_SECRETS = re.compile(r"([?&](?:token|code|sig|password)=)[^&\s\"']+", re.I)

_known_secrets: set[str] = set()


def register_secrets(values: Iterable[str]) -> None:
    """Values (passwords, keys) that must never appear in a log line, wherever they show up."""
    _known_secrets.update(v for v in values if v and len(v) >= 4)


@functools.lru_cache(maxsize=4096)
def is_sensitive_key(key: str) -> bool:
    """True for a field name whose value is never logged or exported, whatever it holds."""
    return bool(_SENSITIVE_KEYS.search(key))


def redact_text(text: str) -> str:
    # The patterns need an "=" or a scheme word: most values (names, ids, statuses) skip both scans.
    if "=" in text or " " in text or not text.isprintable():
        text = _BASIC_AUTH.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
        text = _URL_SECRETS.sub(lambda m: f"{m.group(1)}{REDACTED}", text)
    for secret in _known_secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def _redact_value(key: str, value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float):
        return value
    if is_sensitive_key(key):
        return REDACTED
    if isinstance(value, bytes | bytearray | memoryview):
        return f"<{len(value)} bytes>"
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {k: _redact_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_value(key, v) for v in value]
    return value


def redact_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Structured fields as they may leave the process: in a log line or as telemetry attributes."""
    return {key: _redact_value(key, value) for key, value in fields.items()}


def context_fields() -> dict[str, str]:
    """The invocation id, function name and package reference bound by the enclosing scopes."""
    entry: dict[str, str] = {}
    for key, var in (("invocation_id", _invocation_id), ("function", _function_name), ("package_ref", _package_ref)):
        value = var.get()
        if value is not None:
            entry[key] = value
    return entry


class RedactionFilter(logging.Filter):
    """Scrubs a record in place before a handler writes it: message, `fields` and exception text."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_redacted", False):
            return True
        record.msg = redact_text(record.getMessage())
        record.args = None
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            record.fields = redact_fields(fields)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_text(record.exc_text)
        record._redacted = True
        return True


_redaction = RedactionFilter()


def install_redaction(*handlers: logging.Handler) -> None:
    """Put the redaction filter on `handlers`, or on every handler of the root logger (idempotent).

    A handler added to the root logger later (a telemetry exporter) needs another call.
    """
    for handler in handlers or tuple(logging.getLogger().handlers):
        if _redaction not in handler.filters:
            handler.addFilter(_redaction)


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON line, with the context fields; redacts as the filter does (idempotent),
    so a handler configured without the filter writes nothing secret either."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "event": redact_text(record.getMessage()),
            **context_fields(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(redact_fields(fields))
        if record.exc_info or record.exc_text:
            entry["error"] = redact_text(record.exc_text or self.formatException(record.exc_info))  # type: ignore[arg-type]
        return json.dumps(entry, default=str, ensure_ascii=False)


def get_logger(name: str) -> logging.Logger:
    return logging.getLogger(name)


def log_event(logger: logging.Logger, event: str, level: int = logging.INFO, **fields: Any) -> None:
    """Write one structured line: `event` is a stable dotted name, `fields` its data."""
    if logger.isEnabledFor(level):
        logger.log(level, event, extra={"fields": fields}, stacklevel=2)


def configure(level: int = logging.INFO, stream: Any = None) -> None:
    """Install the JSON formatter, with redaction, on the root logger (the local host and tools call this once).

    In Azure the worker owns the root handler; the context fields still travel in `fields`, and
    shared.telemetry turns them into attributes of the exported log records (customDimensions).
    """
    root = logging.getLogger()
    for handler in root.handlers:
        if getattr(handler, "_structured", False):
            return
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    install_redaction(handler)
    handler._structured = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    # The storage SDKs log every HTTP request at INFO, headers included.
    logging.getLogger("azure").setLevel(logging.WARNING)
    logging.getLogger("urllib3").setLevel(logging.WARNING)


@contextlib.contextmanager
def invocation_scope(invocation_id: str | None, function_name: str | None = None) -> Iterator[None]:
    tokens = (_invocation_id.set(invocation_id), _function_name.set(function_name))
    try:
        yield
    finally:
        _invocation_id.reset(tokens[0])
        _function_name.reset(tokens[1])


@contextlib.contextmanager
def package_scope(package_ref: str | None) -> Iterator[None]:
    token = _package_ref.set(package_ref)
    try:
        yield
    finally:
        _package_ref.reset(token)
