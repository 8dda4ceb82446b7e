"""A worker process: queue listeners, blob-trigger scan and work, and timers for the whole app.

Several workers share nothing but storage, like scaled-out instances of a function app: they
compete for queue messages and blob work, and singletons (the blob scan, each timer) are held by
one worker at a time through blob leases.
"""

from __future__ import annotations

import signal
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devtools.host import logs
from devtools.host.blobs import BlobTriggers
from devtools.host.channel import WorkerChannel
from devtools.host.config import HostJson, default_host_id
from devtools.host.functions import BLOB_TRIGGER, HTTP_TRIGGER, QUEUE_TRIGGER, TIMER_TRIGGER, FunctionSpec, index
from devtools.host.invoke import Invoker
from devtools.host.outputs import OutputWriter
from devtools.host.queues import QueueTriggerRunner
from devtools.host.storage import StorageAccounts
from devtools.host.timers import TimerRunner


@dataclass(frozen=True)
class HostOptions:
    app: str = "function_app"
    host: str = "127.0.0.1"
    port: int = 7071
    workers: int = 1
    settings: Path | None = Path("local.settings.json")
    host_json: Path | None = None
    max_body_mb: float = 100.0


# Threads of the HTTP front end's worker pool: werkzeug serves each request on its own thread.
HTTP_THREADS = 32


def load_host(options: HostOptions) -> tuple[list[FunctionSpec], HostJson, str, WorkerChannel]:
    """The worker (the app indexed by it), the functions it lists, host.json (beside the app module
    unless given) and the host id."""
    channel = WorkerChannel(options.app).start()
    specs = index(channel.metadata)
    host_json = HostJson.load(options.host_json or channel.script_root / "host.json")
    return specs, host_json, default_host_id(options.app), channel


def trigger_threads(specs: list[FunctionSpec], host_json: HostJson) -> int:
    """How many invocations a worker process's listeners may run at once."""
    queues = host_json.queues
    per_queue = queues.batch_size + queues.new_batch_threshold
    count = sum(per_queue for spec in specs if spec.trigger.type == QUEUE_TRIGGER)
    count += sum(1 for spec in specs if spec.trigger.type == TIMER_TRIGGER)
    if any(spec.trigger.type == BLOB_TRIGGER for spec in specs):
        count += min(32, host_json.blob_parallelism) + max(1, host_json.blob_parallelism // 2)
    return count


def http_threads(specs: list[FunctionSpec]) -> int:
    return HTTP_THREADS if any(spec.trigger.type == HTTP_TRIGGER for spec in specs) else 1


class TriggerRuntime:
    """Every non-HTTP trigger of the app, running in this process until `stop` is set."""

    def __init__(self, specs: list[FunctionSpec], host_json: HostJson, host_id: str, storage: StorageAccounts,
                 invoker: Invoker, stop: threading.Event) -> None:
        self._parts: list[Any] = []
        for spec in specs:
            if spec.trigger.type == QUEUE_TRIGGER:
                runner = QueueTriggerRunner(spec, storage.queue(spec.trigger.connection), host_json.queues,
                                            invoker, stop)
                self._parts.append(runner.listener)
            elif spec.trigger.type == TIMER_TRIGGER:
                self._parts.append(TimerRunner(spec, storage, host_id, invoker, stop))
        blob_specs = [spec for spec in specs if spec.trigger.type == BLOB_TRIGGER]
        if blob_specs:
            self._parts.append(BlobTriggers(blob_specs, storage, host_id, host_json.queues,
                                            host_json.blob_parallelism, invoker, stop))

    def start(self) -> None:
        for part in self._parts:
            part.start()

    def join(self) -> None:
        for part in self._parts:
            part.join()


def run_worker(options: HostOptions, index: int, ready: Any) -> None:
    """Entry point of a worker process (started by the supervisor with the spawn method)."""
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    logs.configure()
    specs, host_json, host_id, channel = load_host(options)
    channel.start_pool(trigger_threads(specs, host_json))
    storage = StorageAccounts()
    invoker = Invoker(channel, OutputWriter(storage, host_json.queues.message_encoding), storage)
    runtime = TriggerRuntime(specs, host_json, host_id, storage, invoker, stop)
    runtime.start()
    logs.event("host.worker.started", worker=index, host_id=host_id)
    ready.set()
    while not stop.wait(0.5):
        pass
    runtime.join()
    logs.event("host.worker.stopped", worker=index)
