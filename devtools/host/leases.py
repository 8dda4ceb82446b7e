"""Blob leases for singletons (the blob scanner, each timer) and a helper that keeps things renewed."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable

from azure.core.exceptions import AzureError, HttpResponseError, ResourceExistsError
from azure.storage.blob import BlobLeaseClient, ContainerClient

from devtools.host import logs

LOCK_LEASE_S = 15  # the shortest lease Blob storage grants; renewed every third of it


class Renewer:
    """Calls `renew` every `interval_s` seconds in a background thread until stopped."""

    def __init__(self, renew: Callable[[], object], interval_s: float, what: str) -> None:
        self._renew = renew
        self._interval_s = interval_s
        self._what = what
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"renew-{what}", daemon=True)

    def __enter__(self) -> Renewer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopped.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stopped.wait(self._interval_s):
            try:
                self._renew()
            except AzureError as error:
                logs.event("host.renew.failed", 30, what=self._what, error=type(error).__name__)


class BlobLock:
    """A singleton lock: whoever holds the lease on the lock blob runs the work."""

    def __init__(self, container: ContainerClient, blob_name: str) -> None:
        self._blob = container.get_blob_client(blob_name)
        self._container = container
        self._lease: BlobLeaseClient | None = None

    @property
    def held(self) -> bool:
        return self._lease is not None

    def try_acquire(self) -> bool:
        if self._lease is not None:
            return self.renew()
        try:
            if not self._blob.exists():
                with contextlib.suppress(ResourceExistsError):
                    self._container.create_container()
                with contextlib.suppress(ResourceExistsError):
                    self._blob.upload_blob(b"", overwrite=False)
            self._lease = self._blob.acquire_lease(lease_duration=LOCK_LEASE_S)
            return True
        except ResourceExistsError:  # leased by someone else (409 LeaseAlreadyPresent)
            return False
        except AzureError as error:
            logs.event("host.lock.unavailable", 30, lock=self._blob.blob_name, error=type(error).__name__)
            return False

    def renew(self) -> bool:
        if self._lease is None:
            return False
        try:
            self._lease.renew()
            return True
        except (HttpResponseError, AzureError):
            self._lease = None  # lost it (expired and taken, or storage away): stop acting as the holder
            return False

    def release(self) -> None:
        if self._lease is None:
            return
        with contextlib.suppress(AzureError):
            self._lease.release()
        self._lease = None
