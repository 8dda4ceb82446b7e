"""The Package List sweep: packages we created at Connective whose row never learnt it.

Creation writes the package id to the row as soon as Connective answers. When a worker dies between
the create and that write, and the message is lost (poison queue), the row stays Received or Creating
while the package waits at Connective. Every `MAINTENANCE_SWEEP_EVERY_MIN` the sweep pages through Get
Package List (continuation tokens) for the packages created since the previous sweep began, and:

- a row in Received/Creating without a package id, and no live creation lease: the id is recorded; a
  Draft goes back to creation (which completes Drafts), anything further is read and merged;
- no row at all for a reference shaped like ours: a `created_without_row` event and a warning, since
  no input is left to rebuild the row from.

Progress (the window and the continuation token) is saved in a checkpoint entity after every page,
ETag-guarded, so a sweep cut short by the time or call budget resumes at the next tick, and two
runners never sweep at once.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from shared.connective.models import PackageListItem
from shared.connective.models import PackageStatus as ConnectiveStatus
from shared.logging import get_logger, log_event
from shared.maintenance.work import WorkContext
from shared.pipeline.status_sync import apply_status
from shared.storage import names
from shared.storage.packages import PackageRecord, is_valid_package_ref
from shared.storage.status import UNCREATED

_log = get_logger(__name__)

CHECKPOINT = "package-list-sweep"
PAGE_SIZE = 100
# Each sweep's window starts this long before the previous one began: creations still holding their
# lease during that sweep are seen by the next. A live attempt renews its lease (`CREATION_LEASE_S`,
# shared.pipeline.creation) only while it runs, and no run outlasts host.json's functionTimeout (10 min).
WINDOW_OVERLAP = timedelta(minutes=30)
# The shapes of the packageRefs intake (`inb-`, `bat-` + 20 hex) and the HTTP API (`api-` + 24 hex) give.
OUR_REFERENCE = re.compile(r"^(inb|bat)-[0-9a-f]{20}$|^api-[0-9a-f]{24}$")


@dataclass
class SweepReport:
    ran: bool = False
    completed: bool = False
    pages: int = 0
    seen: int = 0
    recovered: list[str] = field(default_factory=list)
    without_row: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class SweepPolicy:
    every: timedelta
    first_lookback: timedelta


def sweep_if_due(context: WorkContext, policy: SweepPolicy, owner: str, claim_for: timedelta) -> SweepReport:
    """Sweep (or resume a sweep) when one is due. Budget exceptions propagate after progress is saved."""
    report = SweepReport()
    schedule = context.store.schedule
    now = context.clock()
    state, etag = schedule.checkpoint(CHECKPOINT)
    resuming = bool(state.get("Window"))
    claimed_until = state.get("ClaimedUntil")
    if claimed_until is not None and claimed_until > now and state.get("ClaimedBy") != owner:
        return report
    last_started = state.get("LastStartedAt")
    if not resuming and last_started is not None and now - last_started < policy.every:
        return report
    if not resuming:
        start = (last_started - WINDOW_OVERLAP) if last_started is not None else now - policy.first_lookback
        state = {**state, "Window": start, "StartedAt": now, "ContinuationToken": None}
    state.update(ClaimedBy=owner, ClaimedUntil=now + claim_for)
    saved = _Checkpoint(context, state, etag)
    if not saved.save_if_unchanged():
        return report  # another runner took it first
    report.ran = True
    log_event(_log, "maintenance.sweep", resuming=resuming, window=state["Window"].isoformat())
    try:
        _pages(context, saved, report)
    except SweepTakenOver:
        raise
    except Exception:
        # Cut short (time or call budget, an error): release the claim, keep the window and token.
        saved.state.update(ClaimedBy="", ClaimedUntil=None)
        saved.save()
        raise
    saved.state = {"LastStartedAt": state["StartedAt"], "LastCompletedAt": context.clock()}
    saved.save()
    report.completed = True
    log_event(_log, "maintenance.sweep_done", pages=report.pages, seen=report.seen,
              recovered=len(report.recovered), without_row=len(report.without_row))
    return report


def _pages(context: WorkContext, saved: _Checkpoint, report: SweepReport) -> None:
    """Read pages from the saved continuation token on, saving the token after each page."""
    state = saved.state
    while True:
        context.budget.take_call()
        # No SortField (its values are documented nowhere): the window and the continuation token find every page.
        page = context.client.package_list(continuation_token=state.get("ContinuationToken"), max_quantity=PAGE_SIZE,
                                           created_after_date=state["Window"])
        report.pages += 1
        for item in page.items:
            report.seen += 1
            _examine(context, item, report)
        token = page.continuation_token or None
        if not page.items or token is None or token == state.get("ContinuationToken"):
            return
        state["ContinuationToken"] = token
        saved.save()


class _Checkpoint:
    """The sweep's checkpoint entity as this runner last wrote it; every save is ETag-guarded."""

    def __init__(self, context: WorkContext, state: dict[str, Any], etag: str | None) -> None:
        self._schedule = context.store.schedule
        self.state = state
        self._etag = etag

    def save_if_unchanged(self) -> bool:
        etag = self._schedule.save_checkpoint(CHECKPOINT, self.state, self._etag)
        if etag is None:
            return False
        self._etag = etag
        return True

    def save(self) -> None:
        if not self.save_if_unchanged():
            raise SweepTakenOver("another runner took over the package list sweep")


class SweepTakenOver(Exception):
    """The checkpoint changed under this runner (its claim lapsed and another runner resumed the sweep)."""


def _examine(context: WorkContext, item: PackageListItem, report: SweepReport) -> None:
    ref = item.external_package_reference or ""
    if not is_valid_package_ref(ref):
        return
    record = context.store.packages.get(ref)
    if record is None:
        if OUR_REFERENCE.match(ref):
            report.without_row.append(ref)
            context.store.events.append(ref, "created_without_row", source="maintenance", package_id=item.id,
                                        connective_status=str(item.package_status))
            log_event(_log, "maintenance.created_without_row", logging.WARNING, package_ref=ref, package_id=item.id)
        return
    if record.connective_package_id is not None or record.status not in UNCREATED:
        return
    now = context.clock()
    if record.creation_lease_until is not None and record.creation_lease_until > now:
        return  # a creation attempt is under way and will record the id itself
    if not _adopt(context, ref, item.id, now):
        return
    report.recovered.append(ref)
    context.store.events.append(ref, "recovered_by_sweep", source="maintenance", package_id=item.id,
                                connective_status=str(item.package_status))
    log_event(_log, "maintenance.recovered", package_ref=ref, package_id=item.id)
    if item.package_status is ConnectiveStatus.DRAFT:
        # Creation resumes a Draft it holds the id of: adds what is missing and starts it.
        context.store.clients.send_json(names.PACKAGE_REQUESTS_QUEUE, {"packageRef": ref})
        return
    context.budget.take_call()
    apply_status(context.store, ref, context.client.get_package_status(item.id), source="reconcile-sweep", now=now)


def _adopt(context: WorkContext, ref: str, package_id: str, now: datetime) -> bool:
    adopted = False

    def change(row: PackageRecord) -> bool:
        nonlocal adopted
        lease = row.creation_lease_until
        adopted = (row.connective_package_id is None and row.status in UNCREATED
                   and (lease is None or lease <= now))
        if adopted:
            row.connective_package_id = package_id
            row.creation_lease_until = None
        return adopted

    context.store.packages.mutate(ref, change)
    return adopted

