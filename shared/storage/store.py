"""One entry point to the app's storage: service clients plus the table repositories."""

from __future__ import annotations

import threading
from functools import cached_property

from shared.config import Settings
from shared.storage import names
from shared.storage.clients import StorageClients
from shared.storage.events import PackageEventLog
from shared.storage.packages import PackageRepository
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
        policy = self._due_policy or DuePolicy.from_settings(Settings())
        return PackageSchedule(self.clients.table(names.SCHEDULE_TABLE), policy)

    @cached_property
    def packages(self) -> PackageRepository:
        return PackageRepository(self.clients.table(names.PACKAGES_TABLE), hook=self.schedule)

    @cached_property
    def events(self) -> PackageEventLog:
        return PackageEventLog(self.clients.table(names.EVENTS_TABLE))


_shared: dict[str, Store] = {}
_shared_lock = threading.Lock()


def shared_store(settings: Settings | None = None) -> Store:
    """The process-wide Store for the current settings; functions reuse it across invocations
    so connections stay pooled."""
    settings = settings or Settings()
    connection_string, parts = settings.connection(names.DOCUMENT_STORAGE_CONNECTION)
    key = connection_string or repr(sorted(parts.items()))
    with _shared_lock:
        if key not in _shared:
            _shared[key] = Store(StorageClients(connection_string, parts), DuePolicy.from_settings(settings))
        return _shared[key]
