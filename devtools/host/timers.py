"""Timer triggers: 6-field NCRONTAB schedules in UTC, run as a singleton, with schedule monitoring.

With `use_monitor` the schedule status (Last, Next, LastUpdated) is kept in host storage at
`azure-webjobs-hosts/timers/{hostId}/{functionId}/status`, as the real host keeps it. A host that
starts after a missed occurrence fires once with `past_due=True`, not once per missed occurrence.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.core.exceptions import AzureError, ResourceNotFoundError
from croniter import croniter

from devtools.host import logs
from devtools.host.blobs import HOST_CONNECTION, HOST_CONTAINER, LOCK_RETRY_S
from devtools.host.config import HostConfigError, parse_timespan
from devtools.host.functions import FunctionSpec
from devtools.host.inputs import timer_trigger
from devtools.host.invoke import InvocationFailed, Invoker
from devtools.host.leases import LOCK_LEASE_S, BlobLock, Renewer
from devtools.host.storage import StorageAccounts

NEVER = "0001-01-01T00:00:00+00:00"  # `Last` before the first run, .NET's DateTime.MinValue
MONITOR_THRESHOLD = timedelta(minutes=1)  # the real host monitors schedules of a minute or more by default


@dataclass(frozen=True)
class Schedule:
    """An NCRONTAB expression (`sec min hour day month dow`) or a TimeSpan interval (`hh:mm:ss`)."""

    expression: str
    interval: timedelta | None = None

    @classmethod
    def parse(cls, expression: str) -> Schedule:
        text = expression.strip()
        if " " not in text and ":" in text:
            return cls(text, timedelta(seconds=parse_timespan(text)))
        fields = text.split()
        if len(fields) not in (5, 6):
            raise HostConfigError(f"timer schedule {expression!r} must have 6 fields: sec min hour day month dow")
        if not croniter.is_valid(text, second_at_beginning=len(fields) == 6):
            raise HostConfigError(f"timer schedule {expression!r} is not a valid NCRONTAB expression")
        return cls(text)

    def next_after(self, moment: datetime) -> datetime:
        if self.interval is not None:
            return moment + self.interval
        # croniter reads an optional seconds field last unless told it comes first, as in NCRONTAB.
        # NCRONTAB requires both day fields to match when both are given (day_or=False).
        seconds_first = len(self.expression.split()) == 6
        iterator = croniter(self.expression, moment, day_or=False, second_at_beginning=seconds_first)
        return iterator.get_next(datetime)

    @property
    def monitored_by_default(self) -> bool:
        first = self.next_after(datetime(2024, 1, 1, tzinfo=UTC))
        return self.next_after(first) - first >= MONITOR_THRESHOLD


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


class TimerRunner:
    """Runs one timer function while this worker holds the function's singleton lock."""

    def __init__(self, spec: FunctionSpec, storage: StorageAccounts, host_id: str, invoker: Invoker,
                 stop: threading.Event) -> None:
        self._spec = spec
        self._schedule = Schedule.parse(spec.trigger.get("schedule"))
        monitor = spec.trigger.get("useMonitor")
        self._use_monitor = self._schedule.monitored_by_default if monitor is None else bool(monitor)
        self._run_on_startup = bool(spec.trigger.get("runOnStartup", False))
        self._invoker = invoker
        self._stop = stop
        hosts = storage.blob(HOST_CONNECTION).get_container_client(HOST_CONTAINER)
        self._status_blob = hosts.get_blob_client(f"timers/{host_id}/{spec.function_id}/status")
        self._lock = BlobLock(hosts, f"locks/{host_id}/{spec.function_id}.Listener")
        self._thread = threading.Thread(target=self._run, name=f"timer-{spec.name}", daemon=True)
        self._renewed_at = 0.0  # monotonic time the lease was last acquired or renewed by the wait

    def start(self) -> None:
        self._thread.start()

    def join(self) -> None:
        self._thread.join()

    def _run(self) -> None:
        started_once = False
        while not self._stop.is_set():
            if not self._lock.try_acquire():
                self._stop.wait(LOCK_RETRY_S)
                continue
            self._renewed_at = time.monotonic()
            try:
                self._run_while_holding(first=not started_once)
            except AzureError as error:
                logs.event("host.timer.storage_error", 30, function=self._spec.name, error=type(error).__name__)
                self._stop.wait(LOCK_RETRY_S)
            started_once = True
        self._lock.release()

    def _read_status(self) -> dict[str, Any] | None:
        try:
            return json.loads(self._status_blob.download_blob().readall())
        except ResourceNotFoundError:
            return None
        except ValueError:
            return None  # unreadable status is treated as none, as the real host does

    def _write_status(self, last: str, next_due: datetime) -> dict[str, Any]:
        status = {"Last": last, "Next": _iso(next_due), "LastUpdated": _iso(datetime.now(UTC))}
        if self._use_monitor:
            self._status_blob.upload_blob(json.dumps(status).encode(), overwrite=True)
        return status

    def _run_while_holding(self, first: bool) -> None:
        status = self._read_status() if self._use_monitor else None
        now = datetime.now(UTC)
        if status and datetime.fromisoformat(status["Next"]) <= now:
            self._fire(datetime.fromisoformat(status["Next"]), past_due=True, status=status)
        elif first and self._run_on_startup:
            self._fire(now, past_due=False, status=status)
        while not self._stop.is_set():
            due = self._schedule.next_after(datetime.now(UTC))
            if status is None or status["Next"] != _iso(due):
                status = self._write_status(status["Last"] if status else NEVER, due)
            if not self._wait_until(due):
                return
            status = self._fire(due, past_due=False, status=status)

    def _wait_until(self, due: datetime) -> bool:
        """Sleep until `due`, renewing the lock; False when stopping or the lock was lost.

        The lock is renewed by the time since its last renewal, not by the time left to wait: a schedule
        of a few seconds (or runs that follow each other closely) never waits a third of the lease at once,
        and must still keep the lease.
        """
        while True:
            if time.monotonic() - self._renewed_at >= LOCK_LEASE_S / 3:
                if not self._lock.renew():
                    return False
                self._renewed_at = time.monotonic()
            remaining = (due - datetime.now(UTC)).total_seconds()
            if remaining <= 0:
                return True
            if self._stop.wait(min(remaining, LOCK_LEASE_S / 3)):
                return False

    def _fire(self, occurrence: datetime, past_due: bool, status: dict[str, Any] | None) -> dict[str, Any]:
        # Timers do not retry: after a failure the next occurrence runs as scheduled.
        with Renewer(self._lock.renew, LOCK_LEASE_S / 3, f"timer-{self._spec.name}"), \
                contextlib.suppress(InvocationFailed):
            self._invoker.invoke(self._spec, timer_trigger(past_due, status if self._use_monitor else None))
        return self._write_status(_iso(occurrence), self._schedule.next_after(datetime.now(UTC)))
