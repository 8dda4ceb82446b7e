"""The shared limiter when its own table round trips take longer than a lease's validity.

A busy instance (or a slow table) can take longer to write a lease than the lease is valid for.
Time is virtual: each write to the (real, Azurite) table moves the instance's clock on by a set
delay, so the outcome depends on that delay only, never on the machine.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from azure.data.tables import TableClient

from shared.storage.names import RATE_LIMITS_TABLE
from shared.storage.ratelimit import TableRateLimiter, entity_keys
from tests.limiter.test_late_sends import ExactServiceClock, VirtualClock

VALIDITY_S = 0.1
SEND_ALLOWANCE_S = 0.05
WRITE_S = 0.15  # longer than the validity
MOST_WRITES = 12


class SlowWrites:
    """A TableClient whose writes take WRITE_S of the virtual clock; more than MOST_WRITES fail the test."""

    def __init__(self, table: TableClient, clock: VirtualClock, write_s: float = WRITE_S) -> None:
        self._table = table
        self._clock = clock
        self._write_s = write_s
        self.writes = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._table, name)

    def _slow(self) -> None:
        self.writes += 1
        assert self.writes <= MOST_WRITES, "every lease expired before the instance could use it"
        self._clock.now += self._write_s

    def update_entity(self, *args: Any, **kwargs: Any) -> Any:
        self._slow()
        return self._table.update_entity(*args, **kwargs)

    def create_entity(self, *args: Any, **kwargs: Any) -> Any:
        self._slow()
        return self._table.create_entity(*args, **kwargs)


def _limiter(connection_string: str, clock: VirtualClock,
             write_s: float = WRITE_S) -> tuple[TableRateLimiter, SlowWrites, str]:
    key = f"http://sandbox.test/webportalapi/v3|{uuid.uuid4().hex}"
    table = SlowWrites(TableClient.from_connection_string(connection_string, RATE_LIMITS_TABLE), clock, write_s)
    limiter = TableRateLimiter(table, key, 50, 1.0, lease_size=3,  # type: ignore[arg-type]
                               lease_validity_s=VALIDITY_S, latency_margin_s=0.02, send_allowance_s=SEND_ALLOWANCE_S,
                               clock_skew_s=0.0, clock=clock, sleep=lambda seconds: None)
    limiter.service_clock = ExactServiceClock(clock)  # type: ignore[assignment]
    return limiter, table, key


def _logged_leases(table: SlowWrites, key: str) -> dict[str, list[Any]]:
    entity = table.get_entity(*entity_keys(key))
    return {str(item[3]): item for item in json.loads(entity["Leases"])}


def test_leases_slower_to_write_than_their_validity_are_used_and_logged_over_their_whole_span(
        storage_connection_string: str) -> None:
    clock = VirtualClock()
    limiter, table, key = _limiter(storage_connection_string, clock)
    permits = []
    for _ in range(9):
        permit = limiter.acquire(max_wait_s=5.0)
        permits.append((permit, limiter._lease_id))
        assert permit.leave()
    # The first lease expired on its way back (no round trip had been measured yet); the later ones were used.
    assert table.writes <= 5
    leases = _logged_leases(table, key)
    for permit, lease_id in permits:
        start, _, uncertainty = float(leases[lease_id][0]), leases[lease_id][1], float(leases[lease_id][2])
        # Every call of a lease leaves inside the span the log holds for it: the rule compares those spans.
        assert start - uncertainty <= permit.counted_at
        assert permit.send_by <= start + uncertainty + VALIDITY_S + SEND_ALLOWANCE_S + 1e-3


def test_leases_written_well_within_their_validity_are_logged_without_a_lead(storage_connection_string: str) -> None:
    """A lead costs every comparison its length: an instance whose writes take under half the validity pays none."""
    clock = VirtualClock()
    limiter, table, key = _limiter(storage_connection_string, clock, write_s=0.4 * VALIDITY_S)
    lease_ids = []
    for _ in range(9):
        assert limiter.acquire(max_wait_s=5.0).leave()
        lease_ids.append(limiter._lease_id)
    leases = _logged_leases(table, key)
    assert all(float(leases[lease_id][2]) == 0.0 for lease_id in set(lease_ids))
