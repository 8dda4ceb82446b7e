"""What the host reads before it runs anything: app settings, host.json, and its own options."""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class HostConfigError(RuntimeError):
    """The app, host.json or the settings cannot be served as declared."""


def load_local_settings(path: Path | None, environ: MutableMapping[str, str] | None = None) -> list[str]:
    """Copy `Values` of local.settings.json into the environment, as `func start` does.

    A variable already in the environment wins over the file. Returns the names taken from the file.
    """
    environ = os.environ if environ is None else environ
    if path is None or not path.is_file():
        return []
    try:
        document = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as error:
        raise HostConfigError(f"{path} is not valid JSON: {error}") from error
    values = document.get("Values") or {}
    if not isinstance(values, dict):
        raise HostConfigError(f"{path}: `Values` must be an object of strings")
    loaded = []
    for name, value in values.items():
        if name not in environ and value is not None:
            environ[name] = str(value)
            loaded.append(name)
    return loaded


_SETTING_REFERENCE = re.compile(r"%([^%]+)%")


def resolve_setting_references(text: str, environ: MutableMapping[str, str] | None = None) -> str:
    """Replace `%NAME%` with the app setting NAME, as the host does for binding properties."""
    environ = os.environ if environ is None else environ

    def setting(match: re.Match[str]) -> str:
        name = match.group(1)
        value = environ.get(name)
        if value is None:
            raise HostConfigError(f"binding expression %{name}% names an app setting that is not set")
        return value

    return _SETTING_REFERENCE.sub(setting, text)


_TIMESPAN = re.compile(r"^(?:(\d+)\.)?(\d{1,2}):(\d{1,2}):(\d{1,2}(?:\.\d+)?)$")


def parse_timespan(text: str) -> float:
    """Seconds in a .NET TimeSpan string such as `00:00:30` or `1.02:00:00`."""
    match = _TIMESPAN.match(text.strip())
    if not match:
        raise HostConfigError(f"{text!r} is not a TimeSpan (expected [d.]hh:mm:ss)")
    days, hours, minutes, seconds = match.groups()
    return int(days or 0) * 86400 + int(hours) * 3600 + int(minutes) * 60 + float(seconds)


@dataclass(frozen=True)
class QueueOptions:
    """`extensions.queues` of host.json, with the extension's defaults."""

    batch_size: int = 16
    new_batch_threshold: int = 8
    visibility_timeout_s: float = 0.0
    max_dequeue_count: int = 5
    max_polling_interval_s: float = 60.0
    message_encoding: str = "base64"


@dataclass(frozen=True)
class HostJson:
    route_prefix: str = "api"
    queues: QueueOptions = field(default_factory=QueueOptions)
    blob_parallelism: int = 8

    @classmethod
    def load(cls, path: Path) -> HostJson:
        if not path.is_file():
            raise HostConfigError(f"{path} is missing: every function app has a host.json")
        document = json.loads(path.read_text(encoding="utf-8-sig"))
        extensions: dict[str, Any] = document.get("extensions") or {}
        http = extensions.get("http") or {}
        queues = extensions.get("queues") or {}
        blobs = extensions.get("blobs") or {}
        batch_size = int(queues.get("batchSize", 16))
        if not 1 <= batch_size <= 32:
            raise HostConfigError("extensions.queues.batchSize must be between 1 and 32")
        encoding = str(queues.get("messageEncoding", "base64")).lower()
        if encoding not in {"base64", "none"}:
            raise HostConfigError("extensions.queues.messageEncoding must be `base64` or `none`")
        options = QueueOptions(
            batch_size=batch_size,
            new_batch_threshold=int(queues.get("newBatchThreshold", batch_size // 2)),
            visibility_timeout_s=parse_timespan(queues.get("visibilityTimeout", "00:00:00")),
            max_dequeue_count=int(queues.get("maxDequeueCount", 5)),
            max_polling_interval_s=parse_timespan(queues.get("maxPollingInterval", "00:01:00")),
            message_encoding=encoding,
        )
        return cls(
            route_prefix=str(http.get("routePrefix", "api")).strip("/"),
            queues=options,
            blob_parallelism=int(blobs.get("maxDegreeOfParallelism", 8)),
        )


def default_host_id(app_module: str, environ: MutableMapping[str, str] | None = None) -> str:
    """The host id that keys receipts, locks and timer status in host storage.

    Like the real host it is stable across restarts of the same app on the same machine, and it
    can be pinned with `AzureFunctionsWebHost__hostid`. At most 32 characters of [a-z0-9-].
    """
    environ = os.environ if environ is None else environ
    configured = environ.get("AzureFunctionsWebHost__hostid")
    raw = configured or f"{socket.gethostname()}-{app_module}"
    cleaned = re.sub(r"-+", "-", re.sub(r"[^a-z0-9]", "-", raw.lower())).strip("-")
    if len(cleaned) > 32:
        digest = hashlib.sha1(raw.encode(), usedforsecurity=False).hexdigest()[:8]
        cleaned = f"{cleaned[:23].rstrip('-')}-{digest}"
    return cleaned or "localhost"
