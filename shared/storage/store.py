"""One entry point to the app's storage: service clients plus the table repositories."""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import cached_property

from shared.config import Settings
from shared.storage import names
from shared.storage.bulk import BulkRowHook, BulkSendRepository
from shared.storage.clients import StorageClients
from shared.storage.events import PackageEventLog
from shared.storage.packages import PackageRecord, PackageRepository, WriteHook
from shared.storage.schedule import DuePolicy, PackageSchedule


class Store:
    def __init__(self, clients: StorageClients, due_policy: DuePolicy | None = None) -> None:
        self.clients = clients
        self._due_policy = due_policy

    @classmethod
    def from_settings(cls, settings: Settings) -> Store:
        return cls(StorageClients.from_settings(settings), DuePolicy.from_settings(settings))

    @cached_property
    def schedule(self) -> PackageSchedule:
        """The index of due upkeep; every package row write keeps it in step (see shared.storage.schedule)."""
        policy = self._due_policy or DuePolicy.from_settings(Settings.current())
        return PackageSchedule(self.clients.table(names.SCHEDULE_TABLE), policy)

    @cached_property
    def packages(self) -> PackageRepository:
        return PackageRepository(self.clients.table(names.PACKAGES_TABLE),
                                 hook=_Hooks(self.schedule, BulkRowHook(lambda: self.bulk)))

    @cached_property
    def bulk(self) -> BulkSendRepository:
        return BulkSendRepository(self.clients.table(names.BULK_SENDS_TABLE), hook=self.schedule.before_job_write)

    @cached_property
    def events(self) -> PackageEventLog:
        return PackageEventLog(self.clients.table(names.EVENTS_TABLE))


class _Hooks:
    """Several write hooks as one: each edits the record in turn; their after-write steps run in order."""

    def __init__(self, *hooks: WriteHook) -> None:
        self._hooks = hooks

    def before_write(self, record: PackageRecord) -> Callable[[], None] | None:
        after = [step for step in (hook.before_write(record) for hook in self._hooks) if step is not None]
        if not after:
            return None

        def run_all() -> None:
            for step in after:
                step()

        return run_all


_shared: dict[str, Store] = {}
_shared_lock = threading.Lock()


def shared_store(settings: Settings | None = None) -> Store:
    """The process-wide Store for the current settings; functions reuse it across invocations
    so connections stay pooled."""
    settings = settings or Settings.current()
    connection = settings.storage_connection(names.DOCUMENT_STORAGE_CONNECTION)
    with _shared_lock:
        if connection.key not in _shared:
            clients = StorageClients.from_connection(connection)
            _shared[connection.key] = Store(clients, DuePolicy.from_settings(settings))
        return _shared[connection.key]
