"""Cold-start cost of the app: importing function_app in a fresh process, against a minimal app.

Azure imports `function_app` (through the worker's indexing) on every cold start before the first
invocation runs. `startup.import_s` is that import's time in a fresh interpreter (interpreter start
excluded), `startup.minimal_import_s` the same for `bench.minimal_app` (one function per trigger
kind the app uses, the same binding types, no logic), and `startup.import_ratio` the first over the
second: what the app's own modules add. Both are medians of `--runs` fresh processes, run in
alternation so that a change of machine load touches both. Goal: ratio <= 1.3. The same figures in
CPU time of the importing process (`startup.import_cpu_s`, `startup.import_cpu_ratio`) move less
when other work shares the machine.

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
                 "started, cpu = time.perf_counter(), time.process_time()\n"
                 "import importlib; importlib.import_module(sys.argv[1])\n"
                 "print(time.perf_counter() - started, time.process_time() - cpu)\n")


def import_seconds(module: str) -> tuple[float, float]:
    """The wall-clock and CPU time to import `module` in a fresh interpreter, as the worker imports the app."""
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONDONTWRITEBYTECODE", "PYTHONPROFILEIMPORTTIME"}}
    done = subprocess.run([sys.executable, "-c", _TIMED_IMPORT, module], cwd=PROJECT_ROOT, env=env,
                          capture_output=True, text=True, check=True, timeout=120)
    wall, cpu = done.stdout.strip().splitlines()[-1].split()
    return float(wall), float(cpu)


def run(runs: int = DEFAULT_RUNS) -> dict[str, Any]:
    # One import of each first: byte-code is compiled and cached, as in a deployed package.
    import_seconds(APP_MODULE)
    import_seconds(MINIMAL_MODULE)
    app, minimal = [], []
    for _ in range(runs):
        app.append(import_seconds(APP_MODULE))
        minimal.append(import_seconds(MINIMAL_MODULE))
    app_s, minimal_s = (statistics.median(t[0] for t in times) for times in (app, minimal))
    app_cpu_s, minimal_cpu_s = (statistics.median(t[1] for t in times) for times in (app, minimal))
    print(f"function_app: median {app_s:.3f} s of {runs} ({min(t[0] for t in app):.3f} to "
          f"{max(t[0] for t in app):.3f}), CPU {app_cpu_s:.3f} s; minimal app: median {minimal_s:.3f} s "
          f"({min(t[0] for t in minimal):.3f} to {max(t[0] for t in minimal):.3f}), CPU {minimal_cpu_s:.3f} s")
    return {"startup.import_s": round(app_s, 3), "startup.minimal_import_s": round(minimal_s, 3),
            "startup.import_ratio": round(app_s / minimal_s, 3),
            "startup.import_cpu_s": round(app_cpu_s, 3), "startup.minimal_import_cpu_s": round(minimal_cpu_s, 3),
            "startup.import_cpu_ratio": round(app_cpu_s / minimal_cpu_s, 3), "startup.runs": runs}


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
