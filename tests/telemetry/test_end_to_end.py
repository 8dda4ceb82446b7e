"""One package, upload to archive, through the local host with the JSON-lines exporter.

The host runs functions in worker processes (and callbacks in its HTTP front end), so the test reads
what every process exported from files (TELEMETRY_EXPORTER=jsonl), never from an in-memory exporter
of its own process.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from azure.storage.blob import BlobServiceClient

from devtools.world import LocalWorld
from shared.config import Settings
from shared.pipeline.tokens import callback_token
from shared.storage import names
from shared.storage.clients import StorageClients
from shared.storage.status import PackageStatus
from shared.storage.store import Store
from shared.telemetry.jsonl import read_entries
from tests.conftest import wait_until
from tests.pipeline.intake_support import pdf_with_markers

pytestmark = [pytest.mark.slow]

UPLOADER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
UPLOADER_TRACEPARENT = f"00-{UPLOADER_TRACE}-00f067aa0ba902b7-01"
CONNECTIVE_SPAN_ATTRIBUTES = {"connective.operation", "http.request.method", "http.response.status_code",
                              "connective.attempt", "connective.rate_wait_ms", "connective.ambiguous",
                              "connective.possibly_applied", "url.template"}


@pytest.fixture(scope="module")
def telemetry_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("telemetry")


@pytest.fixture(scope="module")
def world(telemetry_dir: Path) -> Iterator[LocalWorld]:
    settings = {"TELEMETRY_EXPORTER": "jsonl", "TELEMETRY_JSONL_DIR": str(telemetry_dir),
                "STATUS_REFRESH_DELAY_S": "2"}
    with LocalWorld(workers=1, settings_file=None, sandbox_args=["--auto-sign", "--auto-sign-delay", "1"],
                    extra_settings=settings) as running:
        yield running


def _wait_for(what: str, probe: Any, timeout_s: float = 90) -> Any:
    return wait_until(probe, timeout_s, 0.3, what)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, inner in value.items():
            yield str(key)
            yield from _strings(inner)
    elif isinstance(value, list | tuple):
        for inner in value:
            yield from _strings(inner)


def test_one_package_is_one_trace_from_upload_to_archive(world: LocalWorld, telemetry_dir: Path) -> None:
    document = pdf_with_markers()
    blobs = BlobServiceClient.from_connection_string(world.storage_connection_string)
    blobs.get_blob_client(names.INBOX_CONTAINER, "otel/traced.pdf").upload_blob(
        document, overwrite=True, metadata={"Signers": "Ann <ann@example.com>", "traceparent": UPLOADER_TRACEPARENT})
    store = Store(StorageClients(world.storage_connection_string))

    def archived_row() -> Any:
        rows = [r for r in store.packages.query("Status eq @s", {"s": PackageStatus.ARCHIVED.value})
                if r.source_uri.endswith("otel/traced.pdf")]
        return rows[0] if rows else None

    row = _wait_for("the package to be archived", archived_row)
    ref = row.ref
    assert row.trace_parent and row.trace_parent.split("-")[1] == UPLOADER_TRACE

    def spans_through_archive() -> list[dict[str, Any]] | None:
        spans = read_entries(telemetry_dir, "spans")
        done = any(s["name"] == "package.archive" and s["attributes"].get("package.ref") == ref for s in spans)
        return spans if done else None

    spans = _wait_for("the archive step's span", spans_through_archive)
    # The client's dependency spans are made on a background thread of each process (they may reach
    # the file after the step that made the call): wait until one per call Connective saw is there.
    stats = requests.get(f"{world.sandbox_root_url}/_sandbox/stats", timeout=10).json()
    calls = int(stats["calls_by_external_reference"][ref])

    def dependencies_of(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [s for s in entries if s["trace_id"] == UPLOADER_TRACE and s["kind"] == "CLIENT"
                and s["name"].startswith("Connective ")]

    def spans_with_every_dependency() -> list[dict[str, Any]] | None:
        entries = read_entries(telemetry_dir, "spans")
        return entries if len(dependencies_of(entries)) >= calls else None

    spans = _wait_for(f"{calls} Connective dependency spans", spans_with_every_dependency)
    package = [s for s in spans if s["trace_id"] == UPLOADER_TRACE]

    # Every step of the journey is in the uploader's trace, each linked to the invocation that ran it.
    steps = {s["name"] for s in package if s["attributes"].get("package.ref") == ref}
    assert {"package.intake", "package.create", "package.callback", "package.archive"} <= steps
    for step in (s for s in package if s["name"] in {"package.create", "package.callback", "package.archive"}):
        assert step["links"] and step["links"][0]["trace_id"] != UPLOADER_TRACE
    by_id = {s["span_id"]: s for s in package}
    for span in package:
        assert span["parent_span_id"] is None or span["parent_span_id"] in by_id or \
            span["parent_span_id"] == UPLOADER_TRACEPARENT.split("-")[2], f"{span['name']} is not connected"

    # One dependency span per call Connective saw for this package, with the expected attributes.
    dependencies = dependencies_of(package)
    assert len(dependencies) == calls, [s["name"] for s in dependencies]
    for span in dependencies:
        assert set(span["attributes"]) >= CONNECTIVE_SPAN_ATTRIBUTES, span
        assert span["attributes"]["http.response.status_code"] < 400
        assert span["attributes"]["connective.attempt"] == 1
    operations = {s["attributes"]["connective.operation"] for s in dependencies}
    assert "create_instant_package" in operations or "CreateInstantPackage" in operations or len(operations) >= 3

    # Storage calls are dependencies too (azure-core's OpenTelemetry plugin).
    assert any(s["kind"] == "CLIENT" and not s["name"].startswith("Connective ") for s in package)

    # Log records carry their structured fields as attributes.
    logs = read_entries(telemetry_dir, "logs")
    accepted = [entry for entry in logs if entry["body"] == "intake.accepted"
                and entry["attributes"].get("package_ref") == ref]
    assert accepted and accepted[0]["attributes"]["signers"] == 1 and accepted[0]["trace_id"] == UPLOADER_TRACE

    # Nothing exported holds a secret, a token or document bytes.
    settings = Settings(world.settings)
    forbidden = {world.settings["CONNECTIVE_PASSWORD"], callback_token(settings, ref),
                 base64.b64encode(f"{world.settings['CONNECTIVE_USERNAME']}:"
                                  f"{world.settings['CONNECTIVE_PASSWORD']}".encode()).decode(),
                 *(secret.get_secret_value() for secret in (*settings.callback_secrets, *settings.webhook_signing_secret)),
                 world.function_key, base64.b64encode(document[:48]).decode()[:32]}
    exported = [*spans, *logs, *read_entries(telemetry_dir, "metrics")]
    for text in (t for entry in exported for t in _strings(entry)):
        assert "%PDF" not in text
        assert not any(secret and secret in text for secret in forbidden), text[:200]
