"""Running a benchmark on a busy machine, and summing up figures that move from run to run.

`cpu_hog(n)` runs n processes that only spin, beside the benchmark's world, at the same priority
as everything else: a function app's instance shares its cores with other invocations, and a goal
that holds only on idle cores does not hold in production. The load average at the start and end
is printed, so a figure can be read against the load it was measured under.

`summarise(runs, noisy)` turns several runs' figures into one set: for each noisy figure the median
under the figure's own name, and `<figure>.min` / `<figure>.max` beside it; every other figure is
the first run's (memory peaks, for instance, are highest on a fresh process).
"""

from __future__ import annotations

import contextlib
import os
import statistics
import subprocess
import sys
from collections.abc import Iterator, Sequence

_SPIN = "while True:\n    pass\n"


def load_average() -> float | None:
    """The 1-minute load average, where the platform has one."""
    with contextlib.suppress(OSError, AttributeError):
        return round(os.getloadavg()[0], 2)
    return None


@contextlib.contextmanager
def cpu_hog(processes: int) -> Iterator[None]:
    """`processes` busy-looping Python processes for the duration of the block (none for 0)."""
    hogs = [subprocess.Popen([sys.executable, "-c", _SPIN], stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for _ in range(max(0, processes))]
    if hogs:
        print(f"  cpu hog: {len(hogs)} busy processes (load average {load_average()})", flush=True)
    try:
        yield
    finally:
        for hog in hogs:
            hog.kill()
        for hog in hogs:
            hog.wait(10)
        if hogs:
            print(f"  cpu hog stopped (load average {load_average()})", flush=True)


def summarise(runs: Sequence[dict[str, object]], noisy: Sequence[str]) -> dict[str, object]:
    """The first run's figures, with each `noisy` figure replaced by its median over the runs plus its min and max."""
    if not runs:
        return {}
    summary = dict(runs[0])
    for key in noisy:
        values = [float(value) for run in runs if isinstance(value := run.get(key), int | float)]
        if not values:
            continue
        summary[key] = round(statistics.median(values), 3)
        summary[f"{key}.min"] = round(min(values), 3)
        summary[f"{key}.max"] = round(max(values), 3)
    summary[f"{_prefix(noisy)}.repeats"] = len(runs)
    return summary


def _prefix(keys: Sequence[str]) -> str:
    return keys[0].split(".")[0] if keys else "bench"
