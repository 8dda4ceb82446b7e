"""Structured host logs. The app's `shared.logging` is used when it can be imported, so the app's
own lines written during an invocation carry the same invocation id."""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

try:
    from shared import logging as app_logging
except ImportError:  # the host also serves apps that have no shared package
    app_logging = None  # type: ignore[assignment]

logger = logging.getLogger("devtools.host")


def configure() -> None:
    if app_logging is not None:
        app_logging.configure()
    else:
        logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(message)s")
    # The dev server's access lines would duplicate ours and show query strings.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)


def event(name: str, level: int = logging.INFO, exc_info: bool = False, **fields: Any) -> None:
    """One structured line: `name` is a stable dotted event name, `fields` its data."""
    if app_logging is not None:
        logger.log(level, name, extra={"fields": fields}, exc_info=exc_info)
    else:
        line = {"ts": datetime.now(UTC).isoformat(timespec="milliseconds"), "event": name, **fields}
        logger.log(level, json.dumps(line, default=str), exc_info=exc_info)


@contextlib.contextmanager
def invocation_scope(invocation_id: str, function_name: str) -> Iterator[None]:
    if app_logging is None:
        yield
        return
    with app_logging.invocation_scope(invocation_id, function_name):
        yield
