"""Queue listening as the Storage Queues extension does it: batches, backoff, retries, poison queue.

Used for the app's queue triggers and for the host's internal blob-trigger work queue.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from azure.core.exceptions import AzureError, ResourceExistsError, ResourceNotFoundError
from azure.storage.queue import QueueClient, QueueMessage, QueueServiceClient

from devtools.host import logs
from devtools.host.config import QueueOptions
from devtools.host.functions import FunctionSpec
from devtools.host.inputs import queue_trigger
from devtools.host.invoke import Invoker
from devtools.host.leases import Renewer
from devtools.host.storage import UndecodableMessage, decode_message

# A received message stays invisible this long and is renewed every third of it while its
# invocation runs, so no other worker gets it mid-run; a worker that dies frees it within this time.
IN_FLIGHT_VISIBILITY_S = 30
MIN_POLLING_INTERVAL_S = 0.1


class PoisonMessage(Exception):
    """A message that can never succeed (undecodable): it goes to the poison path at once."""


def ensure_queue(client: QueueClient) -> None:
    with contextlib.suppress(ResourceExistsError):
        client.create_queue()


class QueueListener:
    """Polls one queue and hands each message to `handle` on a thread pool.

    `handle` returns on success (the message is deleted) and raises on failure (the message becomes
    visible again after visibilityTimeout). When a message has failed `maxDequeueCount` times,
    `on_exhausted` receives it and it is deleted.
    """

    def __init__(self, client: QueueClient, options: QueueOptions, handle: Callable[[QueueMessage], None],
                 on_exhausted: Callable[[QueueMessage], None], stop: threading.Event,
                 max_polling_interval_s: float | None = None) -> None:
        self._client = client
        self._options = options
        self._handle = handle
        self._on_exhausted = on_exhausted
        self._stop = stop
        self._wake = threading.Event()
        self._max_interval_s = max(MIN_POLLING_INTERVAL_S, max_polling_interval_s or options.max_polling_interval_s)
        self._in_flight = 0
        self._capacity = threading.Condition()
        self._pool = ThreadPoolExecutor(max_workers=options.batch_size + options.new_batch_threshold,
                                        thread_name_prefix=f"queue-{client.queue_name}")
        self._thread = threading.Thread(target=self._run, name=f"listen-{client.queue_name}", daemon=True)

    def start(self) -> QueueListener:
        self._thread.start()
        return self

    def wake(self) -> None:
        """Poll now (new work was just enqueued by this process)."""
        self._wake.set()

    def join(self) -> None:
        self._wake.set()
        self._thread.join()
        self._pool.shutdown(wait=True)

    def _receive(self) -> list[QueueMessage]:
        pages = self._client.receive_messages(messages_per_page=self._options.batch_size,
                                              visibility_timeout=IN_FLIGHT_VISIBILITY_S).by_page()
        return list(next(pages, []))

    def _run(self) -> None:
        delay = MIN_POLLING_INTERVAL_S
        while not self._stop.is_set():
            with self._capacity:
                # A new batch is fetched only when the running ones drop to newBatchThreshold.
                self._capacity.wait_for(lambda: self._in_flight <= self._options.new_batch_threshold
                                        or self._stop.is_set(), timeout=1.0)
                if self._in_flight > self._options.new_batch_threshold:
                    continue
            try:
                messages = self._receive()
            except ResourceNotFoundError:
                ensure_queue(self._client)
                messages = []
            except AzureError as error:
                logs.event("host.queue.poll_failed", 30, queue=self._client.queue_name, error=type(error).__name__)
                messages = []
            if not messages:
                self._wake.wait(delay)
                self._wake.clear()
                delay = min(delay * 2, self._max_interval_s)
                continue
            delay = MIN_POLLING_INTERVAL_S
            with self._capacity:
                self._in_flight += len(messages)
            for message in messages:
                self._pool.submit(self._process, message)

    def _process(self, message: QueueMessage) -> None:
        try:
            self._process_one(message)
        except AzureError as error:
            logs.event("host.queue.settle_failed", 30, queue=self._client.queue_name, message_id=message.id,
                       error=type(error).__name__)
        finally:
            with self._capacity:
                self._in_flight -= 1
                self._capacity.notify_all()

    def _process_one(self, message: QueueMessage) -> None:
        if (message.dequeue_count or 0) > self._options.max_dequeue_count:
            # Its last try ended without settling (a worker died): do not run it again.
            self._exhaust(message, message.pop_receipt or "")
            return
        receipt = {"pop": message.pop_receipt or ""}
        receipt_lock = threading.Lock()

        def extend_visibility() -> None:
            with receipt_lock:
                updated = self._client.update_message(message.id, receipt["pop"],
                                                      visibility_timeout=IN_FLIGHT_VISIBILITY_S)
                receipt["pop"] = updated.pop_receipt or receipt["pop"]

        poison = False
        succeeded = False
        with Renewer(extend_visibility, IN_FLIGHT_VISIBILITY_S / 3, f"message-{message.id}"):
            try:
                self._handle(message)
                succeeded = True
            except PoisonMessage as error:
                logs.event("host.queue.poison_message", 40, queue=self._client.queue_name, message_id=message.id,
                           reason=str(error))
                poison = True
            except Exception:
                succeeded = False
        with receipt_lock:
            if succeeded:
                self._client.delete_message(message.id, receipt["pop"])
            elif poison or (message.dequeue_count or 0) >= self._options.max_dequeue_count:
                self._exhaust(message, receipt["pop"])
            else:
                self._client.update_message(message.id, receipt["pop"],
                                            visibility_timeout=int(self._options.visibility_timeout_s))

    def _exhaust(self, message: QueueMessage, pop_receipt: str) -> None:
        self._on_exhausted(message)
        self._client.delete_message(message.id, pop_receipt)


class QueueTriggerRunner:
    """Runs a queue-trigger function for each message of its queue; failures end in `<queue>-poison`."""

    def __init__(self, spec: FunctionSpec, service: QueueServiceClient, options: QueueOptions, invoker: Invoker,
                 stop: threading.Event) -> None:
        queue_name = str(spec.trigger.get("queueName")).lower()
        self._spec = spec
        self._options = options
        self._invoker = invoker
        self._queue = service.get_queue_client(queue_name)
        self._poison = service.get_queue_client(f"{queue_name}-poison")
        ensure_queue(self._queue)
        self.listener = QueueListener(self._queue, options, self._handle, self._to_poison_queue, stop)

    def _handle(self, message: QueueMessage) -> None:
        try:
            body = decode_message(message.content, self._options.message_encoding)
        except UndecodableMessage as error:
            raise PoisonMessage(str(error)) from error
        self._invoker.invoke(self._spec, queue_trigger(
            message.id, body, message.dequeue_count or 0, message.pop_receipt or "", message.inserted_on,
            message.expires_on, message.next_visible_on))

    def _to_poison_queue(self, message: QueueMessage) -> None:
        ensure_queue(self._poison)
        self._poison.send_message(message.content)  # the same wire text, so the poison copy decodes as before
        logs.event("host.queue.poisoned", 40, function=self._spec.name, queue=self._queue.queue_name,
                   message_id=message.id, dequeue_count=message.dequeue_count)

