"""The host's parsing rules, checked without processes: routes, schedules, paths, settings, keys."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from devtools.host.blobs import BlobPath
from devtools.host.config import (
    HostConfigError,
    HostJson,
    load_local_settings,
    parse_timespan,
    resolve_setting_references,
)
from devtools.host.keys import ADMIN, ANONYMOUS, FUNCTION, HostKeys
from devtools.host.outputs import BindingExpressionError, resolve_expressions
from devtools.host.routes import Router
from devtools.host.storage import UndecodableMessage, decode_message, encode_message
from devtools.host.timers import Schedule


def test_routes_prefer_literals_and_check_constraints() -> None:
    router = Router("api")
    router.add("packages/{ref}", ["GET"], "by-ref")
    router.add("packages/{id:int:min(1)}/{part?}", None, "by-id")
    router.add("packages/export", None, "literal")
    router.add("files/{*rest}", None, "rest")
    assert router.match("GET", "/api/packages/export") == ("literal", {})
    assert router.match("GET", "/API/PACKAGES/12") == ("by-id", {"id": "12"})
    assert router.match("GET", "/api/packages/0") == ("by-ref", {"ref": "0"})  # min(1) fails: next route
    assert router.match("POST", "/api/packages/abc") is None
    assert router.match("GET", "/api/files/a/b.pdf") == ("rest", {"rest": "a/b.pdf"})


def test_ncrontab_puts_seconds_first_and_is_utc() -> None:
    start = datetime(2026, 3, 1, 7, 59, 59, tzinfo=UTC)
    assert Schedule.parse("0 0 8 * * *").next_after(start) == datetime(2026, 3, 1, 8, 0, 0, tzinfo=UTC)
    assert Schedule.parse("30 */5 * * * *").next_after(start) == datetime(2026, 3, 1, 8, 0, 30, tzinfo=UTC)
    assert Schedule.parse("00:00:10").next_after(start) == datetime(2026, 3, 1, 8, 0, 9, tzinfo=UTC)
    assert Schedule.parse("0 */5 * * * *").monitored_by_default
    assert not Schedule.parse("*/10 * * * * *").monitored_by_default
    with pytest.raises(HostConfigError):
        Schedule.parse("0 0 8 * *  * *")


def test_blob_paths_bind_names() -> None:
    path = BlobPath.parse("signing-batches/{batch}/manifest.json")
    assert (path.container, path.prefix) == ("signing-batches", "")
    assert path.match("b1/manifest.json") == {"batch": "b1"}
    assert path.match("b1/doc.pdf") is None
    inbox = BlobPath.parse("signing-inbox/in-{name}")
    assert inbox.prefix == "in-" and inbox.match("in-folder/a.pdf") == {"name": "folder/a.pdf"}


def test_binding_expressions() -> None:
    assert resolve_expressions("processed/{Name}.out", {"name": "a.pdf"}) == "processed/a.pdf.out"
    with pytest.raises(BindingExpressionError):
        resolve_expressions("x/{missing}", {})
    assert resolve_setting_references("%INBOX%/{name}", {"INBOX": "signing-inbox"}) == "signing-inbox/{name}"
    with pytest.raises(HostConfigError):
        resolve_setting_references("%NOT_SET%", {})


def test_local_settings_fill_the_environment_without_overriding(tmp_path: Path) -> None:
    file = tmp_path / "local.settings.json"
    file.write_text(json.dumps({"IsEncrypted": False, "Values": {"A": "from-file", "B": "from-file"}}))
    environ = {"A": "from-env"}
    assert load_local_settings(file, environ) == ["B"]
    assert environ == {"A": "from-env", "B": "from-file"}


def test_host_json_queue_options(tmp_path: Path) -> None:
    file = tmp_path / "host.json"
    queues = {"batchSize": 4, "visibilityTimeout": "00:00:30", "maxPollingInterval": "00:00:02",
              "messageEncoding": "none"}
    file.write_text(json.dumps({"version": "2.0", "extensions": {"queues": queues}}))
    options = HostJson.load(file).queues
    assert (options.batch_size, options.new_batch_threshold, options.visibility_timeout_s) == (4, 2, 30.0)
    assert (options.max_polling_interval_s, options.message_encoding, options.max_dequeue_count) == (2.0, "none", 5)
    assert parse_timespan("1.00:00:01.5") == 86401.5


def test_message_encoding_round_trip_including_binary() -> None:
    assert encode_message("{}", "base64") == "e30="
    assert decode_message(encode_message(b"\xff\x00", "base64"), "base64") == b"\xff\x00"
    assert decode_message("plain", "none") == b"plain"
    with pytest.raises(UndecodableMessage):
        decode_message("not base64!", "base64")


def test_keys_give_auth_levels() -> None:
    keys = HostKeys.from_settings({"HOST_FUNCTION_KEYS": "a-key, b-key", "HOST_MASTER_KEY": "m-key"})
    assert keys.generated == ()
    assert [keys.level_of(k) for k in (None, "b-key", "m-key", "x")] == [ANONYMOUS, FUNCTION, ADMIN, ANONYMOUS]
    generated = HostKeys.from_settings({})
    assert set(generated.generated) == {"HOST_FUNCTION_KEYS", "HOST_MASTER_KEY"}
    assert generated.allows(generated.function_keys[0], FUNCTION) and not generated.allows(None, FUNCTION)
