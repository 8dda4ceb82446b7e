"""A cold start imports function_app before any function runs: the modules that do the work (and the
telemetry exporter, unless configured) must wait for the invocation that needs them.

bench.startup measures the time; this only checks which modules the import loads.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]

# Imported by the first invocation that needs them, never by the import of the app.
DEFERRED = (
    "shared.api.dispatch",
    "shared.pipeline.intake",
    "shared.pipeline.callbacks",
    "shared.pipeline.archive",
    "shared.maintenance.runner",
    "shared.webhooks.delivery",
    "shared.connective.client",
    "pypdf",
    "azure.data.tables",
    "azure.monitor.opentelemetry",
    # The settings model: built and validated at the first invocation (shared.environment says why).
    "pydantic_settings",
)


def test_importing_the_app_leaves_the_work_to_the_invocations() -> None:
    script = ("import json, sys; import function_app; "
              f"print(json.dumps([m for m in {list(DEFERRED)!r} if m in sys.modules]))")
    env = {k: v for k, v in os.environ.items() if k != "APPLICATIONINSIGHTS_CONNECTION_STRING"}
    done = subprocess.run([sys.executable, "-c", script], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True,
                          check=True, timeout=120)
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
