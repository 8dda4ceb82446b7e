"""Blob triggers the way the real host runs them: a scan, receipts, an internal work queue, poison.

One scanner at a time (it holds a lease on a lock blob) lists each trigger's container about every
half second, compares with the receipts in host storage and puts a message per new or changed blob
on the internal queue `azure-webjobs-blobtrigger-{hostId}`. Every worker competes for those
messages. Before running, a worker leases the blob's receipt (created with `Incomplete` metadata),
so a blob version runs once even when the scan enqueues it twice; after success the receipt is
marked complete. Five failures send a message to `webjobs-blobtrigger-poison`.

Event Grid-sourced triggers are scanned too: locally there is no Event Grid subscription.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
import threading
import time
from dataclasses import dataclass
from typing import Any

from azure.core.exceptions import AzureError, ResourceExistsError, ResourceNotFoundError
from azure.storage.queue import QueueMessage

from devtools.host import logs
from devtools.host.config import HostConfigError, QueueOptions
from devtools.host.functions import FunctionSpec
from devtools.host.inputs import blob_trigger
from devtools.host.invoke import Invoker
from devtools.host.leases import BlobLock, Renewer
from devtools.host.queues import QueueListener, ensure_queue
from devtools.host.storage import StorageAccounts, encode_message

HOST_CONTAINER = "azure-webjobs-hosts"
HOST_CONNECTION = "AzureWebJobsStorage"
POISON_QUEUE = "webjobs-blobtrigger-poison"
SCAN_INTERVAL_S = 0.5
LOCK_RETRY_S = 2.0
RECEIPT_LEASE_S = 60
# A blob enqueued this long ago that still has no complete receipt is enqueued again (its message
# was lost, e.g. a worker died between dequeue and lease); the receipt lease prevents a double run.
REQUEUE_AFTER_S = 120
INCOMPLETE = "Incomplete"

_EXPRESSION = re.compile(r"\{([^{}]+)\}")


def etag_token(etag: str) -> str:
    return f'"{etag.strip(chr(34))}"'


@dataclass(frozen=True)
class BlobPath:
    """A trigger path such as `signing-inbox/{folder}/{name}.pdf`."""

    container: str
    prefix: str
    pattern: re.Pattern[str]

    @classmethod
    def parse(cls, path: str) -> BlobPath:
        container, sep, blob_pattern = path.strip("/").partition("/")
        if not sep or "{" in container:
            raise HostConfigError(f"blob trigger path {path!r} must be `container/pattern`")
        regex, last = "", 0
        matches = list(_EXPRESSION.finditer(blob_pattern))
        for index, match in enumerate(matches):
            regex += re.escape(blob_pattern[last:match.start()])
            greedy = index == len(matches) - 1 and match.end() == len(blob_pattern)
            regex += f"(?P<{match.group(1)}>.+)" if greedy else f"(?P<{match.group(1)}>.+?)"
            last = match.end()
        regex += re.escape(blob_pattern[last:])
        prefix = blob_pattern[: matches[0].start()] if matches else blob_pattern
        return cls(container=container, prefix=prefix, pattern=re.compile(f"^{regex}$"))

    def match(self, blob_name: str) -> dict[str, str] | None:
        found = self.pattern.match(blob_name)
        return found.groupdict() if found else None


@dataclass(frozen=True)
class BlobWork:
    """The internal work message, in the shape of the real host's (and its poison message)."""

    function_id: str
    container: str
    blob_name: str
    etag: str
    blob_type: str = "BlockBlob"

    def to_json(self) -> str:
        return json.dumps({"Type": "BlobTrigger", "FunctionId": self.function_id, "BlobType": self.blob_type,
                           "ContainerName": self.container, "BlobName": self.blob_name, "ETag": self.etag})

    @classmethod
    def from_json(cls, text: str) -> BlobWork:
        data = json.loads(text)
        return cls(function_id=data["FunctionId"], container=data["ContainerName"], blob_name=data["BlobName"],
                   etag=data["ETag"], blob_type=data.get("BlobType", "BlockBlob"))

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.function_id, self.container, self.blob_name, etag_token(self.etag))


class BlobTriggers:
    """Scanner (singleton) and work listener for every blob-trigger function of the app."""

    def __init__(self, specs: list[FunctionSpec], storage: StorageAccounts, host_id: str, options: QueueOptions,
                 parallelism: int, invoker: Invoker, stop: threading.Event) -> None:
        self._specs = {spec.function_id: spec for spec in specs}
        self._paths = {spec.function_id: BlobPath.parse(spec.trigger.get("path")) for spec in specs}
        self._storage = storage
        self._host_id = host_id
        self._options = options
        self._invoker = invoker
        self._stop = stop
        self._hosts = storage.blob(HOST_CONNECTION).get_container_client(HOST_CONTAINER)
        queues = storage.queue(HOST_CONNECTION)
        self._work_queue = queues.get_queue_client(f"azure-webjobs-blobtrigger-{host_id}")
        self._poison_queue = queues.get_queue_client(POISON_QUEUE)
        self._lock = BlobLock(self._hosts, f"locks/{host_id}/blobtrigger-scanner")
        self._done: set[tuple[str, str, str, str]] = set()
        self._enqueued: dict[tuple[str, str, str, str], float] = {}
        ensure_queue(self._work_queue)
        with contextlib.suppress(ResourceExistsError):
            self._hosts.create_container()
        work_options = dataclasses.replace(options, batch_size=min(32, parallelism),
                                           new_batch_threshold=max(1, parallelism // 2))
        self.listener = QueueListener(self._work_queue, work_options, self._handle, self._to_poison, stop,
                                      max_polling_interval_s=1.0)
        self._scanner = threading.Thread(target=self._scan_loop, name="blob-scanner", daemon=True)

    def start(self) -> None:
        self.listener.start()
        self._scanner.start()

    def join(self) -> None:
        self._scanner.join()
        self.listener.join()

    def _receipt_name(self, work: BlobWork) -> str:
        return (f"blobreceipts/{self._host_id}/{work.function_id}/{etag_token(work.etag)}/"
                f"{work.container}/{work.blob_name}")

    # --- scanning -------------------------------------------------------------------------------

    def _scan_loop(self) -> None:
        holding = False
        while not self._stop.is_set():
            if not self._lock.try_acquire():
                holding = False
                self._stop.wait(LOCK_RETRY_S)
                continue
            if not holding:
                holding = True
                self._load_receipts()
            started = time.monotonic()
            enqueued = 0
            for function_id in self._specs:
                try:
                    enqueued += self._scan(function_id)
                except AzureError as error:
                    logs.event("host.blob.scan_failed", 30, function_id=function_id, error=type(error).__name__)
            if enqueued:
                self.listener.wake()
            # A slow listing (a very large container) is not repeated back to back.
            self._stop.wait(max(SCAN_INTERVAL_S, 2 * (time.monotonic() - started)))
        self._lock.release()

    def _load_receipts(self) -> None:
        """Remember the complete receipts, so a restart does not check each existing blob one by one."""
        for function_id in self._specs:
            prefix = f"blobreceipts/{self._host_id}/{function_id}/"
            try:
                for receipt in self._hosts.list_blobs(name_starts_with=prefix, include=["metadata"]):
                    if (receipt.metadata or {}).get(INCOMPLETE):
                        continue
                    etag, _, rest = receipt.name[len(prefix):].partition("/")
                    container, _, blob_name = rest.partition("/")
                    self._done.add((function_id, container, blob_name, etag_token(etag)))
            except ResourceNotFoundError:
                return
            except AzureError as error:
                logs.event("host.blob.receipts_unreadable", 30, error=type(error).__name__)
                return

    def _receipt_complete(self, work: BlobWork) -> bool | None:
        """True when done, None when running somewhere (leased), False otherwise."""
        try:
            properties = self._hosts.get_blob_client(self._receipt_name(work)).get_blob_properties()
        except ResourceNotFoundError:
            return False
        if not (properties.metadata or {}).get(INCOMPLETE):
            return True
        return None if properties.lease.state == "leased" else False

    def _scan(self, function_id: str) -> int:
        path = self._paths[function_id]
        spec = self._specs[function_id]
        container = self._storage.blob(spec.trigger.connection).get_container_client(path.container)
        now = time.monotonic()
        enqueued = 0
        try:
            blobs = list(container.list_blobs(name_starts_with=path.prefix or None))
        except ResourceNotFoundError:
            return 0
        for blob in blobs:
            if path.match(blob.name) is None:
                continue
            work = BlobWork(function_id, path.container, blob.name, etag_token(blob.etag),
                            str(blob.blob_type.value if hasattr(blob.blob_type, "value") else blob.blob_type))
            if work.key in self._done or now - self._enqueued.get(work.key, -REQUEUE_AFTER_S) < REQUEUE_AFTER_S:
                continue
            state = self._receipt_complete(work)
            if state:
                self._done.add(work.key)
                self._enqueued.pop(work.key, None)
                continue
            self._enqueued[work.key] = now
            if state is None:
                continue  # running on a worker now
            self._work_queue.send_message(work.to_json())
            enqueued += 1
        return enqueued

    # --- running --------------------------------------------------------------------------------

    def _handle(self, message: QueueMessage) -> None:
        try:
            work = BlobWork.from_json(message.content)
        except (ValueError, KeyError):
            logs.event("host.blob.bad_work_message", 40, message_id=message.id)
            return
        spec = self._specs.get(work.function_id)
        if spec is None:
            return  # a function that this app no longer has
        service = self._storage.blob(spec.trigger.connection)
        try:
            properties = service.get_blob_client(work.container, work.blob_name).get_blob_properties()
        except ResourceNotFoundError:
            return  # deleted since the scan
        if etag_token(properties.etag) != etag_token(work.etag):
            return  # changed since the scan; the scan enqueues the new version
        receipt = self._hosts.get_blob_client(self._receipt_name(work))
        with contextlib.suppress(ResourceExistsError):
            receipt.upload_blob(b"", metadata={INCOMPLETE: "true"}, overwrite=False)
        try:
            lease = receipt.acquire_lease(lease_duration=RECEIPT_LEASE_S)
        except ResourceExistsError:
            return  # another worker runs this blob version now; its own message covers a failure
        try:
            with Renewer(lease.renew, RECEIPT_LEASE_S / 3, f"receipt-{work.blob_name}"):
                if not (receipt.get_blob_properties(lease=lease).metadata or {}).get(INCOMPLETE):
                    self._done.add(work.key)
                    return
                self._invoke(spec, work, properties, message.dequeue_count or 0)
                receipt.set_blob_metadata({}, lease=lease)
                self._done.add(work.key)
        finally:
            with contextlib.suppress(AzureError):
                lease.release()

    def _invoke(self, spec: FunctionSpec, work: BlobWork, properties: Any, dequeue_count: int) -> None:
        service = self._storage.blob(spec.trigger.connection)
        path_values = self._paths[work.function_id].match(work.blob_name) or {}
        self._invoker.invoke(spec, blob_trigger(spec.trigger, service, work.container, work.blob_name, properties,
                                                path_values, dequeue_count))

    def _to_poison(self, message: QueueMessage) -> None:
        work = BlobWork.from_json(message.content)
        ensure_queue(self._poison_queue)
        self._poison_queue.send_message(encode_message(work.to_json(), self._options.message_encoding))
        # A complete receipt stops the scan from starting the same blob version over again.
        self._hosts.get_blob_client(self._receipt_name(work)).upload_blob(b"", overwrite=True)
        self._done.add(work.key)
        logs.event("host.blob.poisoned", 40, function_id=work.function_id, container=work.container,
                   blob=work.blob_name, dequeue_count=message.dequeue_count)
