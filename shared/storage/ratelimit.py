"""The connection's rate budget shared by every instance, kept in the Table `RateLimits`.

One entity per connection holds a sliding log of leases: blocks of tokens an instance took from
the budget. Writes are guarded by the entity's ETag (optimistic concurrency), so two instances
never both spend the same room. No library offers a strict sliding-window limiter on Table
Storage (token buckets allow bursts the gateway refuses), hence this module.

Why the rule holds. A lease granted at reference time `s` hands out its tokens during its
validity V; each token is a `Permit` that must leave the process within the send allowance A
after that (the transport re-checks it just before sending and drops a late one unsent), and a
call arrives at the gateway up to a latency margin L after leaving: the lease's calls land
somewhere in [s, s + V + A + L]. A window of W seconds can touch two such intervals only if their
starts are less than W + V + A + L apart (the "horizon"). A lease is written only if, together with every logged lease
whose start lies within the horizon of its own (on either side), it stays within the budget N.
For any window, the last-written lease among those it touches saw all the others (ETag
serialises writes) and they all start within the horizon of its start, so the window holds at
most N calls, however late each token is used.

Leases held late. A lease is decided when the log is read, but its tokens can be handed out only
once the write has come back; on a busy instance or a slow table that round trip can take as long as
V itself (measured: a median of 0.17 s at a load average of 14, against the 0.17 s validity of a run
compressed 6 times), and a lease that ran from the read would expire before its tokens could be used,
still counted against the fleet. So each lease is given a lead D: its tokens may be handed out until
read + D + V, so its calls leave within [s, s + D + V + A]. The log records it centred, with start
s + D/2 and D/2 added to its uncertainty; uncertainties widen every comparison on both sides, so any
two leases whose calls may share a window are still compared, and the rule holds whatever D is. D
only trades budget against usable time: every lease compared pays D of horizon, and a lease is
usable for D + V minus its round trip. D is therefore just enough to keep half the validity usable
after the longest of this instance's last few round trips R (D = R - V/2, at least 0, at most V):
nothing on an instance whose round trips stay under V/2 (the usual case; a lease's tokens go to
threads already waiting for them), up to V on one as slow as the table write.

Clock skew. Instances do not trust their own clocks: each one maps its monotonic clock onto the
Table service's clock, measured from the `Date` header of every response (see `ServiceClock`).
Every lease records how uncertain its start is, and two leases are compared with both
uncertainties added to the horizon, plus the configured floor `clock_skew_s`. A misset instance
clock therefore costs nothing; only the (small) measurement uncertainty costs budget.

Clock steps. The limiter's clock is `time.monotonic`, which NTP never steps (it only slews it).
A clock that did step would be caught by the first table response stamped wholly after the step
(its interval contradicts the narrowed estimate, which restarts); a response in flight across the
step is consistent with both offsets and leaves the old estimate standing for one lease, so a
stepping clock is only safe where steps fall between requests, as the limiter tests model them.

Table unreachable: fail closed. Every caller can already handle `RateLimitDeferred` (queue
work comes back later, callbacks are refreshed later), so `RateLimiterUnavailable` (a
`RateLimitDeferred`) is raised instead of sending. A local fallback at 1/N of the budget was
rejected: the number of instances is unknown during an outage (the platform may scale out), so
no local share is safe, and the pipeline's queues and tables live in the same storage account,
so there is little useful work to do meanwhile. A lease already held is still spent until it
expires, because its tokens are accounted for.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from email.utils import parsedate_to_datetime
from typing import Any, NamedTuple

from azure.core import MatchConditions
from azure.core.exceptions import (
    AzureError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.core.pipeline import PipelineResponse
from azure.data.tables import TableClient, UpdateMode

from shared.config import Settings
from shared.connective.ratelimit import DEFAULT_SEND_ALLOWANCE_S, Permit, RateLimitDeferred, RateLimiterUnavailable
from shared.logging import get_logger, log_event
from shared.storage.names import RATE_LIMITS_TABLE

_ROW_KEY = "sliding-log"
# A Date header states whole seconds; until the first one is read an instance knows nothing better.
_UNMEASURED_UNCERTAINTY_S = 1.0
# ETag conflicts in a row before giving up for this attempt (other instances are making progress).
_MAX_CONFLICTS = 8
# Retry hint when a caller gives up while another thread of the instance is still at the table.
_MIN_RETRY_S = 0.1
# The shortest wait reported when the log has no room: without it, a sum that rounds to 0 would send the
# instance straight back to the table.
_MIN_WAIT_S = 0.001
# A lease's lead follows the longest of this instance's last few lease round trips (see "Leases held late").
_LEAD_SAMPLES = 8
# The share of its validity that a lease keeps usable after the longest recent round trip.
_USABLE_SHARE = 0.5

_logger = get_logger(__name__)


@dataclass(frozen=True)
class Lease:
    """A block of `count` tokens granted at `start` (service clock, epoch s), ± `uncertainty_s`."""

    start: float
    count: int
    uncertainty_s: float
    lease_id: str

    def to_json(self) -> list[float | str]:
        return [round(self.start, 4), self.count, round(self.uncertainty_s, 4), self.lease_id]

    @classmethod
    def from_json(cls, item: list[Any]) -> Lease:
        return cls(float(item[0]), int(item[1]), float(item[2]), str(item[3]))


@dataclass(frozen=True)
class SpentLease:
    """An instance's expired lease and the tokens it actually used, to be written back to the log.

    Lowering a lease's count to what was used is safe once no token of it can be spent any more,
    and it gives the unused tokens back to the fleet at once instead of a horizon later.
    """

    lease_id: str
    used: int

    def apply(self, leases: list[Lease]) -> list[Lease]:
        return [
            replace(lease, count=self.used) if lease.lease_id == self.lease_id else lease
            for lease in leases if lease.lease_id != self.lease_id or self.used > 0
        ]


class ServiceClock:
    """Maps a local monotonic clock onto the Table service's clock.

    Each response's `Date` (whole seconds, truncated) was stamped between sending at local time
    q and receiving at local time r, so the offset local - service lies in (q - D - 1, r - D].
    Intersecting these intervals over recent samples narrows the offset to about the round trip
    time within a few seconds of traffic. Samples age out so slow drift is followed; samples that
    contradict each other (a stepped clock) restart the estimate from the newest one.
    """

    def __init__(self, clock: Callable[[], float], floor_s: float, sample_life_s: float = 300.0) -> None:
        self._clock = clock
        self._floor_s = floor_s
        self._sample_life_s = sample_life_s
        self._samples: deque[tuple[float, float, float]] = deque()
        self._lock = threading.Lock()

    def observe(self, sent: float, received: float, service_date: float) -> None:
        with self._lock:
            self._samples.append((received, sent - service_date - 1.0, received - service_date))
            while self._samples and self._samples[0][0] < received - self._sample_life_s:
                self._samples.popleft()
            if self._bounds() is None:
                self._samples = deque([self._samples[-1]])

    def _bounds(self) -> tuple[float, float] | None:
        low = max(sample[1] for sample in self._samples)
        high = min(sample[2] for sample in self._samples)
        return (low, high) if low <= high else None

    def now(self) -> tuple[float, float, float]:
        """(local time, estimated service time, uncertainty of that estimate in seconds)."""
        local = self._clock()
        with self._lock:
            bounds = self._bounds() if self._samples else None
        if bounds is None:
            return local, local, _UNMEASURED_UNCERTAINTY_S + self._floor_s
        low, high = bounds
        return local, local - (low + high) / 2, (high - low) / 2 + self._floor_s


class LeaseOutcome(NamedTuple):
    granted: int
    lease_id: str
    start_local: float  # local clock time at which the log was read; the lease's validity (plus lead) runs from it
    wait_s: float  # when nothing was granted: seconds until there may be room
    logged: bool  # the spent lease passed in is now reflected in the log


def entity_keys(connection_key: str) -> tuple[str, str]:
    """PartitionKey and RowKey of a connection's entity; hashed, since URLs hold characters keys forbid."""
    return hashlib.sha256(connection_key.encode("utf-8")).hexdigest(), _ROW_KEY


class TableRateLimiter:
    """At most `calls` calls in any `window_s` across every instance that shares the table."""

    def __init__(
        self,
        table_client_or_connection_string: TableClient | str,
        connection_key: str,
        calls: int,
        window_s: float,
        lease_size: int = 5,
        *,
        lease_validity_s: float = 1.0,
        latency_margin_s: float = 0.1,
        send_allowance_s: float = DEFAULT_SEND_ALLOWANCE_S,
        clock_skew_s: float = 0.05,
        request_timeout_s: float = 5.0,
        unavailable_retry_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if calls < 1 or window_s <= 0 or lease_size < 1 or lease_validity_s <= 0:
            raise ValueError("calls, window, lease size and lease validity must be positive")
        if send_allowance_s < 0 or latency_margin_s < 0:
            raise ValueError("send allowance and latency margin must not be negative")
        if isinstance(table_client_or_connection_string, str):
            self._table = TableClient.from_connection_string(table_client_or_connection_string, RATE_LIMITS_TABLE)
        else:
            self._table = table_client_or_connection_string
        self._partition_key, self._row_key = entity_keys(connection_key)
        self.calls = calls
        self.window_s = window_s
        self._lease_size = lease_size
        self._lease_validity_s = lease_validity_s
        self._send_allowance_s = send_allowance_s
        self._horizon_s = window_s + lease_validity_s + send_allowance_s + latency_margin_s
        self._request_options: dict[str, Any] = {
            "connection_timeout": request_timeout_s, "read_timeout": request_timeout_s, "retry_total": 1,
        }
        self._unavailable_retry_s = unavailable_retry_s
        self._clock = clock
        self._sleep = sleep
        self.service_clock = ServiceClock(clock, clock_skew_s)
        self._condition = threading.Condition()
        self._tokens = 0
        self._lease_granted = 0
        self._lease_expires = 0.0
        # Local clock times before which a table round trip is known to be pointless.
        self._no_room_until = 0.0
        self._unavailable_until = 0.0
        self._fetching = False
        self._next_lease = 1
        self._lease_id = ""
        # Permits of the current lease voided for leaving late: never sent, so not spent.
        self._lease_voided = 0
        # The last lease, if it expired with tokens unused and the log does not know it yet.
        self._unreported: SpentLease | None = None
        # Seconds from reading the log to holding the lease, of the last few leases (see "Leases held late").
        self._round_trips: deque[float] = deque(maxlen=_LEAD_SAMPLES)

    # -- the RateLimiter protocol -------------------------------------------------------------

    def acquire(self, max_wait_s: float) -> Permit:
        deadline = self._clock() + max_wait_s
        with self._condition:
            while True:
                now = self._clock()
                if self._tokens > 0 and now < self._lease_expires:
                    self._tokens -= 1
                    return Permit(now, self._lease_expires + self._send_allowance_s, self._clock,
                                  functools.partial(self._void, self._lease_id))
                if now < self._unavailable_until:
                    raise RateLimiterUnavailable(self._unavailable_until - now, "the rate limit table is unreachable")
                if self._fetching:
                    # Another thread is at the table for this instance; its lease serves us too.
                    if now >= deadline:
                        raise RateLimitDeferred(max(self._no_room_until - now, _MIN_RETRY_S))
                    self._condition.wait(timeout=deadline - now)
                elif now < self._no_room_until:
                    if self._no_room_until > deadline:
                        raise RateLimitDeferred(self._no_room_until - now)
                    self._sleep_unlocked(self._no_room_until - now)
                else:
                    self._fetch_lease()

    def pause(self, seconds: float) -> None:
        """After a 429: hand out nothing for `seconds`; the current lease's tokens go back unused."""
        with self._condition:
            self._no_room_until = max(self._no_room_until, self._clock() + max(0.0, seconds))
            self._lease_expires = min(self._lease_expires, self._clock())

    def _void(self, lease_id: str) -> None:
        """A permit of lease `lease_id` was dropped unsent. Counted only while that lease is still this
        instance's current one; later, its report may already be written (counting it used is safe)."""
        with self._condition:
            if lease_id == self._lease_id and self._lease_granted:
                self._lease_voided += 1

    def _sleep_unlocked(self, seconds: float) -> None:
        self._condition.release()
        try:
            self._sleep(seconds)
        finally:
            self._condition.acquire()

    # -- leasing --------------------------------------------------------------------------------

    def _fetch_lease(self) -> None:
        """One table transaction on behalf of every waiting thread; called with the condition held."""
        want = self._lease_request_size()
        spent = self._unreported
        lead_s = self._lead_s()
        self._fetching = True
        self._condition.release()
        error: AzureError | None = None
        try:
            outcome = self._lease_from_table(want, spent, lead_s)
        except AzureError as caught:
            error = caught
        finally:
            self._condition.acquire()
            self._fetching = False
            self._condition.notify_all()
        if error is not None:
            self._unavailable_until = self._clock() + self._unavailable_retry_s
            log_event(_logger, "ratelimit.table_unavailable", logging.WARNING,
                      error=type(error).__name__, retry_after_s=self._unavailable_retry_s)
            raise RateLimiterUnavailable(
                self._unavailable_retry_s, f"the rate limit table is unreachable ({type(error).__name__})"
            ) from error
        if outcome.logged and self._unreported is spent:
            self._unreported = None
        if outcome.granted:
            self._round_trips.append(max(0.0, self._clock() - outcome.start_local))
            self._tokens = self._lease_granted = outcome.granted
            self._lease_id = outcome.lease_id
            self._lease_expires = outcome.start_local + lead_s + self._lease_validity_s
            self._no_room_until = 0.0
        else:
            self._no_room_until = self._clock() + outcome.wait_s

    def _lead_s(self) -> float:
        """How much longer than its validity the next lease may be handed out (see "Leases held late")."""
        validity = self._lease_validity_s
        longest = max(self._round_trips, default=0.0)
        return min(validity, max(0.0, longest - (1.0 - _USABLE_SHARE) * validity))

    def _lease_request_size(self) -> int:
        """Grow the block while leases are used up, shrink it to what was used when they expire.

        Tokens that expire unused still counted against the budget; a quiet instance asking for
        full blocks would make the fleet defer calls while the gateway sits idle.
        """
        if self._lease_granted:
            unused = self._tokens + self._lease_voided
            if self._tokens == 0:
                self._next_lease = min(self._lease_size, 2 * self._lease_granted)
            else:
                self._next_lease = max(1, self._lease_granted - unused)
            if unused:
                self._unreported = SpentLease(self._lease_id, self._lease_granted - unused)
        self._tokens = self._lease_granted = self._lease_voided = 0
        return self._next_lease

    def _lease_from_table(self, want: int, spent: SpentLease | None, lead_s: float = 0.0) -> LeaseOutcome:
        """A new lease if there is room, else the wait; `spent` is written back in the same transaction.

        The lease may be spent for `lead_s` longer than its validity: it is logged centred on that
        longer span (see "Leases held late")."""
        for _ in range(_MAX_CONFLICTS):
            entity = self._read_entity()
            local, start, uncertainty = self.service_clock.now()
            start, uncertainty = start + lead_s / 2, uncertainty + lead_s / 2
            leases = _decode(entity)
            live = [lease for lease in leases if not self._obsolete(lease, start, uncertainty)]
            corrected = spent.apply(live) if spent else live
            overlapping = [lease for lease in corrected if self._overlaps(lease, start, uncertainty)]
            room = self.calls - sum(lease.count for lease in overlapping)
            if room < 1:
                if corrected != live and not self._write_entity(entity, corrected):
                    continue
                wait_s = self._seconds_until_room(overlapping, start, uncertainty, 1 - room)
                return LeaseOutcome(0, "", local, wait_s, logged=True)
            lease = Lease(start, min(want, room), uncertainty, secrets.token_hex(4))
            if self._write_entity(entity, [*corrected, lease]):
                return LeaseOutcome(lease.count, lease.lease_id, local, 0.0, logged=True)
        log_event(_logger, "ratelimit.contention", logging.INFO, conflicts=_MAX_CONFLICTS)
        return LeaseOutcome(0, "", self._clock(), _MIN_RETRY_S, logged=False)

    def _overlaps(self, lease: Lease, start: float, uncertainty: float) -> bool:
        return abs(start - lease.start) < self._horizon_s + lease.uncertainty_s + uncertainty

    def _obsolete(self, lease: Lease, start: float, uncertainty: float) -> bool:
        # A full extra horizon of slack: later leases of other instances may start a little earlier.
        return start - lease.start > 2 * self._horizon_s + lease.uncertainty_s + uncertainty

    def _seconds_until_room(self, overlapping: list[Lease], start: float, uncertainty: float, needed: int) -> float:
        freed = 0
        for lease in sorted(overlapping, key=lambda item: item.start + item.uncertainty_s):
            freed += lease.count
            if freed >= needed:
                # At least a moment: there is no room now, and rounding may put the sum at or just below 0.
                return max(_MIN_WAIT_S, lease.start + self._horizon_s + lease.uncertainty_s + uncertainty - start)
        return self._horizon_s

    # -- table access ---------------------------------------------------------------------------

    def _call(self, operation: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run one table operation, feeding the response's Date header to the service clock."""
        sent = self._clock()
        dates: list[float] = []

        def record_date(response: PipelineResponse[Any, Any]) -> None:
            header = response.http_response.headers.get("Date")
            if header:
                with contextlib.suppress(TypeError, ValueError):
                    dates.append(parsedate_to_datetime(header).timestamp())

        try:
            return operation(*args, raw_response_hook=record_date, **self._request_options, **kwargs)
        finally:
            if dates:
                self.service_clock.observe(sent, self._clock(), dates[-1])

    def _read_entity(self) -> dict[str, Any] | None:
        """The connection's entity (its ETag and lease log), or None when it does not exist yet."""
        try:
            entity = self._call(self._table.get_entity, self._partition_key, self._row_key)
        except ResourceNotFoundError as error:
            if getattr(error, "error_code", None) == "TableNotFound":
                with contextlib.suppress(ResourceExistsError):
                    self._call(self._table.create_table)
            return None
        return {"etag": entity.metadata["etag"], "Leases": entity.get("Leases", "[]")}

    def _write_entity(self, current: dict[str, Any] | None, leases: list[Lease]) -> bool:
        """Replace the log if nobody wrote since it was read; False on a lost race."""
        entity = {
            "PartitionKey": self._partition_key, "RowKey": self._row_key,
            "Leases": json.dumps([lease.to_json() for lease in leases], separators=(",", ":")),
            "Calls": self.calls, "WindowS": self.window_s,
        }
        try:
            if current is None:
                self._call(self._table.create_entity, entity)
            else:
                self._call(self._table.update_entity, entity, mode=UpdateMode.REPLACE,
                           etag=current["etag"], match_condition=MatchConditions.IfNotModified)
        except (ResourceModifiedError, ResourceExistsError, ResourceNotFoundError):
            return False
        return True


def _decode(entity: dict[str, Any] | None) -> list[Lease]:
    if entity is None:
        return []
    return [Lease.from_json(item) for item in json.loads(entity["Leases"] or "[]")]


def table_limiter_from_settings(
    settings: Settings, connection_key: str, calls: int, window_s: float, latency_margin_s: float
) -> TableRateLimiter:
    # The storage clients module owns connection strings versus identity-based settings.
    from shared.storage.clients import StorageClients

    table = StorageClients.from_settings(settings).table(RATE_LIMITS_TABLE)
    return TableRateLimiter(
        table, connection_key, calls, window_s,
        lease_size=settings.connective_rate_lease_size,
        lease_validity_s=settings.connective_rate_lease_validity_s,
        latency_margin_s=latency_margin_s,
        clock_skew_s=settings.connective_rate_clock_skew_s,
    )
