"""Starts the worker processes and keeps them running.

A worker that dies (killed, crashed) is started again after a short backoff, the way the platform
replaces a lost instance; the others carry on meanwhile. Messages it held reappear after their
visibility timeout and its leases expire, so its work is picked up by the others.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from devtools.host import logs
from devtools.host.worker import HostOptions, run_worker

RESTART_BACKOFF_S = (1.0, 2.0, 5.0, 10.0, 30.0)
STABLE_AFTER_S = 30.0
STOP_GRACE_S = 20.0


@dataclass
class _Worker:
    index: int
    process: Any
    ready: Any
    started: float = field(default_factory=time.monotonic)
    restarts: int = 0
    quick_failures: int = 0


class WorkerSupervisor:
    def __init__(self, options: HostOptions) -> None:
        self._options = options
        self._context = multiprocessing.get_context("spawn")
        self._workers: dict[int, _Worker] = {}
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._monitor = threading.Thread(target=self._watch, name="supervisor", daemon=True)

    def _spawn(self, index: int, previous: _Worker | None = None) -> None:
        ready = self._context.Event()
        process = self._context.Process(target=run_worker, args=(self._options, index, ready),
                                        name=f"host-worker-{index}", daemon=True)
        process.start()
        worker = _Worker(index=index, process=process, ready=ready)
        if previous is not None:
            worker.restarts = previous.restarts + 1
            quick = time.monotonic() - previous.started < STABLE_AFTER_S
            worker.quick_failures = previous.quick_failures + 1 if quick else 0
        self._workers[index] = worker

    def start(self) -> None:
        with self._lock:
            for index in range(self._options.workers):
                self._spawn(index)
        self._monitor.start()

    def wait_ready(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                workers = list(self._workers.values())
            if all(w.ready.is_set() for w in workers):
                return True
            if any(not w.process.is_alive() and w.quick_failures >= 2 for w in workers):
                return False
            time.sleep(0.1)
        return False

    def _watch(self) -> None:
        while not self._stopping.wait(0.5):
            with self._lock:
                for worker in list(self._workers.values()):
                    if worker.process.is_alive() or self._stopping.is_set():
                        continue
                    backoff = RESTART_BACKOFF_S[min(worker.quick_failures, len(RESTART_BACKOFF_S) - 1)]
                    if time.monotonic() - worker.started < backoff:
                        continue
                    logs.event("host.worker.restarting", 30, worker=worker.index,
                               exit_code=worker.process.exitcode, restarts=worker.restarts + 1)
                    self._spawn(worker.index, previous=worker)

    def status(self) -> list[dict[str, Any]]:
        with self._lock:
            return [{"index": w.index, "pid": w.process.pid, "alive": w.process.is_alive(),
                     "ready": w.ready.is_set(), "restarts": w.restarts} for w in self._workers.values()]

    def stop(self) -> None:
        self._stopping.set()
        with self._lock:
            workers = list(self._workers.values())
        for worker in workers:
            if worker.process.is_alive():
                worker.process.terminate()
        deadline = time.monotonic() + STOP_GRACE_S
        for worker in workers:
            worker.process.join(max(0.1, deadline - time.monotonic()))
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join(5)
