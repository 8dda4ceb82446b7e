"""One maintenance run: the Package List sweep when it is due, then the due index rows, in batches.

For each due index row: claim it (ETag), re-read the package row (the job row, for a stalled bulk
send), drop the index row when it is stale, else do the work (`shared.maintenance.work`) and move the
index row to the next due time. A run stops
starting work when its time budget or its share of the call budget is spent, or when the connection
has no token (intake and callbacks come first); whatever it did not reach stays due, and the next
tick resumes. A missed tick (`past_due`) needs no catch-up loop: the index holds every due row once.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from shared.config import Settings
from shared.connective.client import ConnectiveClient
from shared.connective.errors import ConnectiveError, RetryLater, ThrottledError
from shared.logging import get_logger, log_event, package_scope
from shared.maintenance.budget import OutOfTime, RunBudget
from shared.maintenance.sweep import SweepPolicy, SweepReport, SweepTakenOver, sweep_if_due
from shared.maintenance.work import HANDLERS, Outcome, WorkContext, rows_of
from shared.storage.bulk import BulkJob
from shared.storage.packages import PackageRecord, utcnow
from shared.storage.schedule import ScheduleEntry
from shared.storage.store import Store

_log = get_logger(__name__)

# A row whose work failed is taken again after this long (a 5xx, a refusal, an unclear outcome).
RETRY_AFTER_ERROR = timedelta(minutes=15)
# A claim outlives the run that took it, so a crashed run's rows come back by themselves.
CLAIM_MARGIN = timedelta(minutes=1)
# A row whose work raised something unexpected (a storage hiccup, a bug) is released to be taken again
# after this long, rather than held for the rest of its claim.
RETRY_AFTER_FAILURE = timedelta(minutes=1)
# Index rows read per batch, and handled side by side: the work is mostly storage round trips, while
# Connective calls are paced by the rate share whatever the parallelism.
BATCH_SIZE = 100
PARALLELISM = 4
# How far back the very first Package List sweep looks; later sweeps start where the previous one began.
FIRST_SWEEP_LOOKBACK = timedelta(hours=24)


@dataclass
class RunReport:
    owner: str
    past_due: bool
    outcomes: Counter[str] = field(default_factory=Counter)
    calls: int = 0
    stopped: str | None = None  # why the run stopped before the due work ran out
    sweep: SweepReport = field(default_factory=SweepReport)
    seconds: float = 0.0

    def as_log(self) -> dict[str, Any]:
        return {"owner": self.owner, "past_due": self.past_due, "outcomes": dict(self.outcomes), "calls": self.calls,
                "stopped": self.stopped, "sweep_pages": self.sweep.pages, "recovered": len(self.sweep.recovered),
                "without_row": len(self.sweep.without_row), "seconds": round(self.seconds, 3)}


class _Stop(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class RunOptions:
    time_budget_s: float
    parallelism: int
    page_size: int
    extend_by: timedelta
    sweep: SweepPolicy

    @classmethod
    def from_settings(cls, settings: Settings) -> RunOptions:
        return cls(
            time_budget_s=settings.maintenance_time_budget_s,
            parallelism=PARALLELISM,
            page_size=BATCH_SIZE,
            extend_by=timedelta(days=settings.expiry_extend_days),
            sweep=SweepPolicy(every=timedelta(minutes=settings.maintenance_sweep_every_min),
                              first_lookback=FIRST_SWEEP_LOOKBACK),
        )


def run_maintenance(store: Store, client: ConnectiveClient, settings: Settings, *, past_due: bool = False,
                    clock: Callable[[], datetime] = utcnow, budget: RunBudget | None = None,
                    owner: str | None = None, options: RunOptions | None = None) -> RunReport:
    """One run of the timer. `clock` is "now" for every decision (tests move it with the sandbox's clock)."""
    options = options or RunOptions.from_settings(settings)
    budget = budget or RunBudget.from_settings(settings)
    context = WorkContext(store=store, client=client, budget=budget, policy=store.schedule.policy,
                          extend_by=options.extend_by, clock=clock)
    return MaintenanceRun(context, options, owner or uuid.uuid4().hex[:12], past_due).run()


class MaintenanceRun:
    def __init__(self, context: WorkContext, options: RunOptions, owner: str, past_due: bool) -> None:
        self.context = context
        self.options = options
        self.report = RunReport(owner=owner, past_due=past_due)
        self._stop_reason: str | None = None
        self._lock = threading.Lock()
        self._taken: set[tuple[str, str]] = set()
        self._claim_for = timedelta(seconds=options.time_budget_s) + CLAIM_MARGIN

    def run(self) -> RunReport:
        started = time.monotonic()
        if self.report.past_due:
            log_event(_log, "maintenance.past_due", owner=self.report.owner)
        try:
            self._sweep()
            self._due_work()
        finally:
            self.report.calls = self.context.budget.calls
            self.report.seconds = time.monotonic() - started
            log_event(_log, "maintenance.run", **self.report.as_log())
        return self.report

    def _sweep(self) -> None:
        try:
            self.report.sweep = sweep_if_due(self.context, self.options.sweep, self.report.owner, self._claim_for)
        except (OutOfTime, RetryLater) as spent:
            self._stop(_reason(spent))
        except (ConnectiveError, SweepTakenOver) as error:
            # The index work does not depend on the sweep: note it and go on.
            log_event(_log, "maintenance.sweep_failed", logging.WARNING, error=str(error))

    def _due_work(self) -> None:
        if self._stop_reason is not None:
            return
        with ThreadPoolExecutor(max_workers=self.options.parallelism, thread_name_prefix="maintenance") as pool:
            for page in self.context.store.schedule.due_pages(self.context.clock(), self.options.page_size):
                if self._stopping():
                    break
                # A page is a batch: its rows run in parallel (storage round trips overlap), and the next
                # page is read once they are done, so rows rewritten meanwhile are seen in their new place.
                list(pool.map(self._handle_quietly, page))
                if self._stopping():
                    break

    def _stopping(self) -> bool:
        if self._stop_reason is None and self.context.budget.time_left_s() <= 0:
            self._stop("time budget spent")
        return self._stop_reason is not None

    def _stop(self, reason: str) -> None:
        with self._lock:
            if self._stop_reason is None:
                self._stop_reason = reason
                self.report.stopped = reason

    def _count(self, outcome: str) -> None:
        with self._lock:
            self.report.outcomes[outcome] += 1

    def _first_time(self, entry: ScheduleEntry) -> bool:
        """Each (kind, package) once per run: a row moved to a time that is still due is left for the next."""
        key = (entry.kind.value, entry.package_ref)
        with self._lock:
            if key in self._taken:
                return False
            self._taken.add(key)
            return True

    def _handle_quietly(self, entry: ScheduleEntry) -> None:
        with package_scope(entry.package_ref):
            try:
                self._handle(entry)
            except Exception:
                # One package's trouble (say, storage hiccups) must not end the run for the others.
                self._count("error")
                log_event(_log, "maintenance.item_failed", logging.ERROR, kind=entry.kind.value, exc_info=True)

    def _handle(self, entry: ScheduleEntry) -> None:
        if self._stop_reason is not None or not self._first_time(entry):
            return
        schedule = self.context.store.schedule
        now = self.context.clock()
        claimed = schedule.claim(entry, self.report.owner, now + self._claim_for)
        if claimed is None:
            self._count("taken-by-other")
            return
        record = rows_of(self.context.store, entry.kind).get(entry.package_ref)
        if record is None or not claimed.is_current_for(record):
            schedule.complete(claimed)
            self._count("stale")
            return
        try:
            outcome = HANDLERS[entry.kind](self.context, record)
        except (OutOfTime, RetryLater) as spent:
            schedule.put_back(claimed, now)
            self._stop(_reason(spent))
            return
        except ConnectiveError as error:
            schedule.put_back(claimed, now + RETRY_AFTER_ERROR, LastError=f"{type(error).__name__}: {error}"[:500])
            self._count("error")
            log_event(_log, "maintenance.work_failed", logging.WARNING, kind=entry.kind.value, error=str(error))
            return
        except Exception as error:
            # Best effort: with storage down the release fails too, and the claim lapses by itself.
            with contextlib.suppress(Exception):
                schedule.put_back(claimed, now + RETRY_AFTER_FAILURE, LastError=type(error).__name__)
            raise
        self._reindex(entry)
        schedule.complete(claimed)
        self._count(f"{entry.kind.value}:{outcome.value}" if outcome is not Outcome.NOT_DUE else "not-due")

    def _reindex(self, entry: ScheduleEntry) -> None:
        """Forget the handled row on the package row; the write hook indexes the next due time, if any."""
        field_name = entry.kind.index_field

        def change(row: PackageRecord | BulkJob) -> bool:
            setattr(row, field_name, None)
            return True

        rows_of(self.context.store, entry.kind).mutate(entry.package_ref, change)


def _reason(spent: BaseException) -> str:
    if isinstance(spent, OutOfTime):
        return "time budget spent"
    if isinstance(spent, ThrottledError):
        return "throttled by Connective"
    return "no rate token (the timer's share or the connection's budget is spent)"
