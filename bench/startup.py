"""Cold-start cost of the app: importing function_app in a fresh process, against a minimal app.

Azure imports `function_app` (through the worker's indexing) on every cold start before the first
invocation runs. `startup.import_s` is that import's time in a fresh interpreter (interpreter start
excluded), `startup.minimal_import_s` the same for `bench.minimal_app` (one function per trigger
kind the app uses, the same binding types, no logic), and `startup.import_ratio` the first over the
second: what the app's own modules add. Both are medians of `--runs` fresh processes, run in
alternation so that a change of machine load touches both. Goal: ratio <= 1.3.

    python -m bench.startup [--runs 9]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[1]
APP_MODULE = "function_app"
MINIMAL_MODULE = "bench.minimal_app"
DEFAULT_RUNS = 9
_TIMED_IMPORT = ("import sys, time\n"
                 "started = time.perf_counter()\n"
                 "import importlib; importlib.import_module(sys.argv[1])\n"
                 "print(time.perf_counter() - started)\n")


def import_seconds(module: str) -> float:
    """The time to import `module` in a fresh interpreter, as the worker imports the app."""
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONDONTWRITEBYTECODE", "PYTHONPROFILEIMPORTTIME"}}
    done = subprocess.run([sys.executable, "-c", _TIMED_IMPORT, module], cwd=PROJECT_ROOT, env=env,
                          capture_output=True, text=True, check=True, timeout=120)
    return float(done.stdout.strip().splitlines()[-1])


def run(runs: int = DEFAULT_RUNS) -> dict[str, Any]:
    # One import of each first: byte-code is compiled and cached, as in a deployed package.
    import_seconds(APP_MODULE)
    import_seconds(MINIMAL_MODULE)
    app_times, minimal_times = [], []
    for _ in range(runs):
        app_times.append(import_seconds(APP_MODULE))
        minimal_times.append(import_seconds(MINIMAL_MODULE))
    app_s, minimal_s = statistics.median(app_times), statistics.median(minimal_times)
    print(f"function_app: median {app_s:.3f} s of {runs} ({min(app_times):.3f} to {max(app_times):.3f}); "
          f"minimal app: median {minimal_s:.3f} s ({min(minimal_times):.3f} to {max(minimal_times):.3f})")
    return {"startup.import_s": round(app_s, 3), "startup.minimal_import_s": round(minimal_s, 3),
            "startup.import_ratio": round(app_s / minimal_s, 3), "startup.runs": runs}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.startup", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=DEFAULT_RUNS, help="fresh processes per module")
    args = parser.parse_args(argv)
    for key, value in run(args.runs).items():
        print(f"{key}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
