"""Helpers for the maintenance tests: a clock that follows the sandbox's, settings, packages and runs."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.config import Settings
from shared.connective import ConnectiveClient, LocalRateLimiter
from shared.maintenance.budget import RunBudget
from shared.maintenance.runner import RunReport, run_maintenance
from shared.maintenance.sweep import CHECKPOINT
from shared.storage.clients import StorageClients
from shared.storage.packages import PackageRecord
from shared.storage.schedule import BUCKET_PREFIX, CHECKPOINT_PARTITION, DuePolicy
from shared.storage.status import PackageStatus
from shared.storage.store import Store
from tests.conftest import SandboxHandle
from tests.pipeline.callback_world import client_for, insert_row, pdf, settings_for, stakeholder

POLICY = {
    "REMINDER_FIRST_AFTER_H": "48", "REMINDER_EVERY_H": "24", "REMINDER_MAX_COUNT": "2",
    "EXPIRY_WINDOW_H": "24", "EXPIRY_EXTEND_DAYS": "7", "EXPIRY_MAX_EXTENSIONS": "2",
    "RECONCILE_AFTER_H": "6", "MAINTENANCE_TIME_BUDGET_S": "60",
}


class SandboxClock:
    """Our side's "now", moved together with the sandbox's clock, so both sides agree on the time."""

    def __init__(self, sandbox: SandboxHandle) -> None:
        self._sandbox = sandbox
        self._offset = timedelta(seconds=float(sandbox.admin("GET", "clock").json()["offset_s"]))

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self._offset

    def advance(self, **delta: float) -> None:
        seconds = timedelta(**delta).total_seconds()
        answer = self._sandbox.admin("POST", "clock", json={"advance_s": seconds}).json()
        self._offset = timedelta(seconds=float(answer["offset_s"]))


class World:
    def __init__(self, sandbox: SandboxHandle, connection_string: str, **settings: str) -> None:
        self.sandbox = sandbox
        self.connection_string = connection_string
        self.settings = settings_for(sandbox, connection_string, **{**POLICY, **settings})
        self.store = Store(StorageClients(connection_string), DuePolicy.from_settings(self.settings))
        self.client: ConnectiveClient = client_for(sandbox)
        self.clock = SandboxClock(sandbox)

    def run(self, budget: RunBudget | None = None, **options: Any) -> RunReport:
        budget = budget or RunBudget(60, LocalRateLimiter(10_000, 60))
        return run_maintenance(self.store, self.client, self.settings, clock=self.clock, budget=budget, **options)

    def pending_package(self, ref: str, *, signer_count: int = 1, expiry: datetime | None = None,
                        **row: Any) -> PackageRecord:
        """A Pending package at the sandbox (no callback URL: nothing tells us about it) and its row."""
        body: dict[str, Any] = {
            "Initiator": "owner@example.com", "DocumentName": f"contract {ref}", "ExternalPackageReference": ref,
            "Stakeholders": [stakeholder(f"signer{n}@example.com", order=n + 1, fields=[
                {"PageNumber": 1, "Left": "72", "Top": str(600 - 80 * n), "Width": "180", "Height": "60"}])
                for n in range(signer_count)],
        }
        if expiry is not None:
            body["ExpiryTimestamp"] = expiry.isoformat()
        package_id = self.client.create_instant_package(body, pdf(f"contract for {ref}")).package_id
        return insert_row(self.store, ref, package_id, pending_since=self.clock(), expiry_timestamp=expiry, **row)

    def skip_sweeps(self) -> None:
        """Note a sweep as just started, so runs within MAINTENANCE_SWEEP_EVERY_MIN do not sweep."""
        assert self.store.schedule.save_checkpoint(CHECKPOINT, {"LastStartedAt": self.clock()}, None)

    def row(self, ref: str) -> PackageRecord:
        record = self.store.packages.get(ref)
        assert record is not None
        return record

    def reminders(self, package_id: str | None) -> int:
        stats = self.sandbox.admin("GET", "stats").json()
        return int(stats["reminders_by_package"].get(str(package_id).lower(), 0)
                   or stats["reminders_by_package"].get(str(package_id), 0))

    def sandbox_package(self, package_id: str | None) -> dict[str, Any]:
        return dict(self.sandbox.admin("GET", f"packages/{package_id}").json())

    def index_rows(self, ref: str | None = None, kind: str | None = None) -> list[dict[str, Any]]:
        table = self.store.clients.table("PackageSchedule")
        rows = [dict(entity) for entity in table.query_entities(
            "PartitionKey ge @first", parameters={"first": BUCKET_PREFIX})]
        return [row for row in rows
                if (ref is None or row["PackageRef"] == ref) and (kind is None or row["Kind"] == kind)]

    def run_across(self, threshold: timedelta, outcome: str) -> RunReport:
        """A run a minute before `threshold` from now, which must not count `outcome`, then one a minute after
        it; returns the second run's report."""
        self.clock.advance(seconds=(threshold - timedelta(minutes=1)).total_seconds())
        assert self.run().outcomes[outcome] == 0
        self.clock.advance(minutes=2)
        return self.run()

    def checkpoint_rows(self) -> Iterator[dict[str, Any]]:
        table = self.store.clients.table("PackageSchedule")
        yield from table.query_entities("PartitionKey eq @p", parameters={"p": CHECKPOINT_PARTITION})

    def events(self, ref: str, kind: str) -> list[dict[str, Any]]:
        return [event for event in self.store.events.history(ref) if event["kind"] == kind]


def quiet_world(sandbox: SandboxHandle, connection_string: str) -> World:
    """A world whose runs neither reconcile nor sweep, so only the index work under test happens."""
    world = World(sandbox, connection_string, RECONCILE_AFTER_H="10000")
    world.skip_sweeps()
    return world


def settings_with(world: World, **extra: str) -> Settings:
    return settings_for(world.sandbox, world.connection_string, **{**POLICY, **extra})


def final_row(store: Store, ref: str) -> PackageRecord:
    return insert_row(store, ref, f"done-{ref}", status=PackageStatus.ARCHIVED)
