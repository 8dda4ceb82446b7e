"""Following dropped inputs to their final states through the SigningPackages table.

Reads tolerate storage outages (the chaos run restarts Azurite): a failed read counts as "no news".
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable

from azure.core.exceptions import AzureError

from bench._inputs import DroppedInput
from shared.storage.packages import ROW_KEY, PackageRecord
from shared.storage.status import PackageStatus
from shared.storage.store import Store

# Where a row stops moving on its own: Finished still has its archive to come.
TERMINAL = frozenset({PackageStatus.ARCHIVED, PackageStatus.REJECTED, PackageStatus.REVOKED,
                      PackageStatus.FAILED, PackageStatus.INPUT_REJECTED})


def read_rows(store: Store) -> dict[str, PackageRecord] | None:
    """Every package row by ref, or None while storage does not answer."""
    try:
        return {row.ref: row for row in store.packages.query("RowKey eq @row", {"row": ROW_KEY})}
    except AzureError:
        return None


def status_counts(inputs: Iterable[DroppedInput], rows: dict[str, PackageRecord]) -> Counter[str]:
    """How many inputs are in each status; `missing` for inputs without a row yet."""
    return Counter(rows[i.ref].status.value if i.ref in rows else "missing" for i in inputs)


def wait_until_settled(store: Store, inputs: list[DroppedInput], timeout_s: float,
                       on_tick: Callable[[dict[str, PackageRecord], float], None] | None = None,
                       poll_s: float = 1.0, report_every_s: float = 10.0) -> dict[str, PackageRecord]:
    """Poll until every input's row is terminal, or the time is up; the last rows read.

    `on_tick(rows, elapsed_s)` runs after every successful read: the chaos run hooks its faults there.
    """
    started = time.monotonic()
    last_report = 0.0
    rows: dict[str, PackageRecord] = {}
    while (elapsed := time.monotonic() - started) < timeout_s:
        fresh = read_rows(store)
        if fresh is not None:
            rows = fresh
            if on_tick is not None:
                on_tick(rows, elapsed)
            if all(i.ref in rows and rows[i.ref].status in TERMINAL for i in inputs):
                break
        if elapsed - last_report >= report_every_s:
            last_report = elapsed
            counts = status_counts(inputs, rows)
            print(f"  {elapsed:6.1f} s  " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())), flush=True)
        time.sleep(poll_s)
    return rows
