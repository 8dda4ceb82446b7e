"""Stopping a child process the same way everywhere: SIGTERM, a grace period, then SIGKILL."""

from __future__ import annotations

import subprocess
from typing import Any

KILL_WAIT_S = 5.0


def stop_process(process: subprocess.Popen[Any], grace_s: float) -> None:
    """Ask `process` to end, wait up to `grace_s`, then kill it. A process that already ended is left as is."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(grace_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(KILL_WAIT_S)
