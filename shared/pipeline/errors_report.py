"""Error reports: one JSON blob in `signing-errors/` per rejected input.

The rejected original stays where it was; the report says what was wrong with it, so the sender
can fix it and upload again (a new upload has a new ETag, and so a new packageRef).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from azure.storage.blob import ContentSettings

from shared.storage import names
from shared.storage.store import Store

_UNSAFE_PATH_CHARS = re.compile(r"[^A-Za-z0-9._/ -]")
_MAX_DETAILS = 50


@dataclass
class Rejection(Exception):
    """Why an input is refused: a stable machine code and a message for people."""

    code: str
    message: str
    details: list[Any] = field(default_factory=list)

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


def safe_blob_path(name: str) -> str:
    """A version of an untrusted blob name that is safe inside another blob path.

    Control characters, non-ASCII and other odd characters become `_`; `..` segments and leading
    slashes disappear, so the report can never land outside its folder.
    """
    cleaned = _UNSAFE_PATH_CHARS.sub("_", name)
    segments = [segment for segment in cleaned.split("/") if segment not in ("", ".", "..")]
    return "/".join(segments)[:700] or "_"


def report_path(source_container: str, blob_name: str, at: datetime) -> str:
    stamp = at.strftime("%Y%m%dT%H%M%S.%fZ")
    return f"{safe_blob_path(source_container)}/{safe_blob_path(blob_name)}.{stamp}.json"


def write_report(store: Store, *, source_container: str, blob_name: str, etag: str | None,
                 package_ref: str | None, rejection: Rejection) -> str:
    """Write the report and return its path inside `signing-errors`."""
    now = datetime.now(UTC)
    path = report_path(source_container, blob_name, now)
    report = {
        "reportVersion": "1",
        "rejectedAt": now.isoformat(),
        "input": {"container": source_container, "name": blob_name, "etag": etag},
        "packageRef": package_ref,
        "reason": {"code": rejection.code, "message": rejection.message},
        "details": rejection.details[:_MAX_DETAILS],
    }
    body = json.dumps(report, indent=2, ensure_ascii=False, default=str).encode("utf-8")
    store.clients.container(names.ERRORS_CONTAINER).upload_blob(
        path, body, overwrite=True, content_settings=ContentSettings(content_type="application/json"))
    return path
