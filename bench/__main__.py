"""Run every benchmark, print one table, and write bench/results/latest.json.

    python -m bench                 # everything (under 20 minutes on the 2-core reference machine)
    python -m bench saturation ...  # some of them, by name (BENCHMARKS)
    python -m bench --repeat 5 ...  # the noisy figures as medians of 5 repetitions (default 3)
    python -m bench.<module>        # one, on its own

Benchmarks measure; they don't assert. The table compares each figure with its goal so a reader
sees at a glance what holds. bench/README.md explains each figure.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import os
import platform
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"

# Name → (module, its `run` function), in run order: cheap and independent first.
BENCHMARKS: dict[str, tuple[str, str]] = {
    "startup": ("startup", "run"),
    "sandbox_rps": ("sandbox_rps", "run"),
    "client_overhead": ("client_overhead", "run"),
    "client_streaming": ("client_streaming", "run"),
    "callback_latency": ("callback_latency", "run"),
    "timer_scale": ("timer_scale", "run"),
    "calls_per_package": ("calls_per_package", "run"),
    "large_doc": ("large_doc", "run"),
    "large_batch": ("large_batch", "run"),
    "saturation": ("saturation", "run"),
    "saturation_loaded": ("saturation", "run_loaded"),
    "e2e_throughput": ("e2e_throughput", "run"),
    "bulk": ("bulk", "run"),
}
# Repetitions of the benchmarks whose `run` takes `repeat`: their noisy figures are medians (with .min and
# .max), repeated inside one world (bench/README.md lists them). 3 keeps a full run under 20 minutes.
DEFAULT_REPEAT = 3

# Result key → (comparison, goal). `>=` means the figure must reach the goal, `<=` stay under it.
GOALS: dict[str, tuple[str, float]] = {
    "startup.import_ratio": ("<=", 1.3),
    "sandbox.status_rps": (">=", 500),
    "client.overhead_ratio": ("<=", 1.2),
    "client.overhead_ratio_traced": ("<=", 1.2),
    "client.stream_peak_rss_ratio": ("<=", 1.5),
    "saturation.budget_use_pct": (">=", 95),
    "saturation.throttled_429": ("<=", 0),
    "saturation_loaded.budget_use_pct": (">=", 93),
    "saturation_loaded.throttled_429": ("<=", 0),
    "callback.p99_ms": ("<=", 100),
    "calls_per_package.single": ("<=", 4),
    "calls_per_package.multi": ("<=", 11),
    "large_doc.peak_rss_ratio": ("<=", 1.5),
    "large_doc.throughput_ratio": (">=", 0.8),
    "large_batch.zip_ratio": ("<=", 1.5),
    "timer.scale_ratio": ("<=", 1.5),
    "bulk.budget_use_pct": (">=", 95),
    "bulk.throttled_429": ("<=", 0),
    "bulk.rss_growth_mb": ("<=", 50),
    "bulk.time_ratio": ("<=", 1.3),
}


def _verdict(key: str, value: Any) -> str:
    if key not in GOALS or not isinstance(value, int | float):
        return ""
    comparison, goal = GOALS[key]
    met = value >= goal if comparison == ">=" else value <= goal
    return f"{'met' if met else 'MISSED'} (goal {comparison} {goal:g})"


def _format(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 100 else f"{value:,.1f}"
    return str(value)


def run(names: list[str], repeat: int = DEFAULT_REPEAT) -> dict[str, Any]:
    results: dict[str, Any] = {}
    errors: dict[str, str] = {}
    timings: dict[str, float] = {}
    for name in names:
        print(f"\n=== bench.{name} ===", flush=True)
        started = time.monotonic()
        try:
            module_name, function_name = BENCHMARKS[name]
            function = getattr(importlib.import_module(f"bench.{module_name}"), function_name)
            takes_repeat = "repeat" in inspect.signature(function).parameters
            results.update(function(repeat=repeat) if takes_repeat else function())
        except Exception as error:
            errors[name] = f"{type(error).__name__}: {error}"
            traceback.print_exc()
        timings[name] = round(time.monotonic() - started, 1)
        print(f"--- bench.{name}: {timings[name]} s", flush=True)
    return {"results": results, "errors": errors, "seconds": timings}


def print_table(outcome: dict[str, Any]) -> None:
    rows = [(key, _format(value), _verdict(key, value)) for key, value in sorted(outcome["results"].items())]
    width = max([len(r[0]) for r in rows] + [10])
    print("\n" + "figure".ljust(width), "value".rjust(14), "  verdict")
    print("-" * (width + 40))
    for key, value, verdict in rows:
        print(key.ljust(width), value.rjust(14), " ", verdict)
    for name, error in outcome["errors"].items():
        print(f"bench.{name} failed: {error}")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (default: all): {', '.join(BENCHMARKS)}")
    parser.add_argument("--repeat", type=int, default=DEFAULT_REPEAT,
                        help="repetitions behind the noisy figures' medians")
    args = parser.parse_args(argv)
    names = args.names or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmarks: {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
        return 2
    started = time.monotonic()
    outcome = run(names, max(1, args.repeat))
    outcome["repeat"] = max(1, args.repeat)
    outcome["total_seconds"] = round(time.monotonic() - started, 1)
    outcome["machine"] = {"python": platform.python_version(), "platform": platform.platform(),
                          "cpus": os.cpu_count()}
    outcome["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    outcome["goals"] = {k: {"comparison": c, "goal": g} for k, (c, g) in GOALS.items()}
    print_table(outcome)
    RESULTS_DIR.mkdir(exist_ok=True)
    target = RESULTS_DIR / ("latest.json" if not args.names else f"latest-{'-'.join(names)}.json")
    target.write_text(json.dumps(outcome, indent=2, default=str))
    print(f"\nwrote {target.relative_to(Path.cwd()) if target.is_relative_to(Path.cwd()) else target}"
          f" in {outcome['total_seconds']} s")
    return 1 if outcome["errors"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
