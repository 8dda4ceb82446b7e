"""Manifests (a batch's `manifest.json`, a bulk send's `job.json`): strict JSON, and document paths that
stay inside their folder. Each refusal is a Rejection that says exactly what is wrong."""

from __future__ import annotations

import json
import re
from typing import Any

from shared.pipeline.errors_report import Rejection
from shared.storage import names
from shared.strict_json import DuplicateKeyError, no_duplicate_keys

MAX_MANIFEST_BYTES = 1024 * 1024
MANIFEST_NAME = names.BATCH_MANIFEST_NAME


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def parse_manifest(raw: bytes, name: str = MANIFEST_NAME) -> dict[str, Any]:
    """The manifest as a dict, or a Rejection saying exactly why it is not acceptable JSON."""
    if len(raw) > MAX_MANIFEST_BYTES:
        raise Rejection("manifest_too_large", f"{name} is {len(raw)} bytes; the limit is {MAX_MANIFEST_BYTES}")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise Rejection("manifest_not_utf8", f"{name} is not UTF-8 text (byte {error.start})") from None
    try:
        parsed = json.loads(text, object_pairs_hook=no_duplicate_keys, parse_constant=_reject_constant)
    except DuplicateKeyError as error:
        raise Rejection("manifest_duplicate_key", str(error)) from None
    except json.JSONDecodeError as error:
        raise Rejection("manifest_not_json", f"{name} is not JSON: {error.msg} at line {error.lineno}, "
                                             f"column {error.colno}") from None
    except RecursionError:
        raise Rejection("manifest_too_deep", f"{name} nests too deeply") from None
    except ValueError as error:  # NaN/Infinity, or an integer with thousands of digits
        raise Rejection("manifest_not_json", f"{name} holds an unacceptable value: {error}") from None
    if not isinstance(parsed, dict):
        raise Rejection("schema_invalid", f"{name} must hold one JSON object")
    return parsed


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def batch_document_path(batch_folder: str, path: str) -> str:
    """The blob name of a manifest document; paths are relative to the batch folder and stay inside it."""
    segments = path.split("/")
    if (path.startswith("/") or "\\" in path or _CONTROL.search(path)
            or any(segment in ("", ".", "..") for segment in segments)):
        raise Rejection("document_path_invalid",
                        f"document path {path[:200]!r} must be relative to the batch folder, without '..', "
                        f"'.', empty segments, backslashes or control characters")
    if segments[-1].lower() == MANIFEST_NAME:
        raise Rejection("document_path_invalid", "the manifest cannot be one of its own documents")
    return f"{batch_folder}/{path}" if batch_folder else path
