"""Resident memory of the host's workers while a benchmark runs: a sampler and its settled baseline."""

from __future__ import annotations

import threading
import time

import psutil

from devtools.host.process import HostProcess

SAMPLE_EVERY_S = 0.05
# Left to settle before the baseline is read: the warm-up's last invocation has released what it held.
SETTLE_S = 1.0


class RssSampler(threading.Thread):
    """Peak RSS of some processes, alone and with their children, sampled every 50 ms."""

    def __init__(self, pids: list[int]) -> None:
        super().__init__(daemon=True)
        self.processes = [psutil.Process(pid) for pid in pids]
        self.stopping = threading.Event()
        self.peak_own = self.peak_with_children = 0
        self.samples: list[tuple[float, int]] = []  # (time.time(), own RSS)

    def sample(self) -> tuple[int, int]:
        own = children = 0
        for process in self.processes:
            try:
                own += process.memory_info().rss
                children += sum(child.memory_info().rss for child in process.children(recursive=True))
            except psutil.Error:
                continue  # a child that ended between the listing and the read
        return own, own + children

    def run(self) -> None:
        while not self.stopping.is_set():
            own, total = self.sample()
            self.samples.append((time.time(), own))
            self.peak_own, self.peak_with_children = max(self.peak_own, own), max(self.peak_with_children, total)
            time.sleep(SAMPLE_EVERY_S)

    def stop(self) -> None:
        self.stopping.set()
        self.join(5)


class WorkerMemory:
    """The workers' RSS from now on: the baseline (own, with children) read after a settled second, the
    host's log line where the measured work starts, and a sampler running until `stop`."""

    def __init__(self, host: HostProcess) -> None:
        self.host = host
        self.sampler = RssSampler(host.worker_pids())
        time.sleep(SETTLE_S)
        self.baseline_own, self.baseline_total = self.sampler.sample()
        self.first_line = len(host.lines)
        self.sampler.start()

    def stop(self) -> None:
        self.sampler.stop()

    def lines(self) -> list[str]:
        """The host's log lines since the baseline."""
        return self.host.lines[self.first_line:]
