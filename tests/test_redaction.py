"""Log redaction is a filter on the output handlers: whichever module logs, through whatever logger."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
from pathlib import Path

from shared.logging import JsonFormatter, install_redaction, register_secrets

ROOT = Path(__file__).resolve().parents[1]


def _handler() -> tuple[logging.Handler, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    return handler, stream


def test_a_plain_standard_logger_is_scrubbed_by_the_installed_filter() -> None:
    register_secrets(["s3cret-registered-value"])
    handler, stream = _handler()
    install_redaction(handler)
    install_redaction(handler)  # idempotent
    assert len(handler.filters) == 1
    logger = logging.getLogger("some.library.module")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        logger.info("calling %s with Basic dXNlcjpwYXNz", "https://x.test/cb?token=abc123",
                    extra={"fields": {"password": "hunter22", "note": "has s3cret-registered-value inside",
                                      "body": b"raw bytes"}})
        try:
            raise RuntimeError("failed with s3cret-registered-value")
        except RuntimeError:
            logger.exception("broke")
    finally:
        logger.removeHandler(handler)
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["event"] == "calling https://x.test/cb?token=*** with Basic ***"
    assert first["password"] == "***" and first["note"] == "has *** inside" and first["body"] == "<9 bytes>"
    assert "s3cret-registered-value" not in second["error"] and "RuntimeError" in second["error"]


def test_the_app_installs_the_filter_on_the_root_handlers_when_it_loads() -> None:
    # In a fresh interpreter: the worker's handler is on the root logger before it imports the app.
    probe = ("import logging; handler = logging.StreamHandler(); logging.getLogger().addHandler(handler); "
             "import function_app; print([type(f).__name__ for f in handler.filters])")
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "['RedactionFilter']"
