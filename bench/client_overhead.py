"""The client's cost per call: Get Package Status through `ConnectiveClient` against a bare
`requests.Session.get` of the same sandbox endpoint.

The client's call includes what production pays for: the rate token (a limiter far above the number
of calls, so it never waits), the retry loop, the structured log line (formatted to a null stream)
and parsing the answer into a model. Calls alternate between the two, so drift in the sandbox's
speed affects both alike. `client.overhead_ratio` is the median client call over the median bare one.

`client.overhead_ratio_traced` is the same measure once OpenTelemetry is on, as in Azure: the
client's dependency span and metrics, the log line exported as a log record, the redaction
processors, and batch processors handing everything to an exporter that drops it (the export itself
runs on the SDK's background thread, outside the call). The calls run inside a recorded span, as
they do in a function invocation. The client makes its spans and metric points on its telemetry
thread (shared.connective.recording); each call is followed by waiting for that thread, outside the
timing, so that work is not charged to the next bare call.

    .venv/bin/python -m bench.client_overhead
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from opentelemetry import trace
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExporter
from opentelemetry.sdk.metrics.export import ConsoleMetricExporter, PeriodicExportingMetricReader
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from devtools.ports import free_port, wait_for_port
from shared.connective import ConnectiveClient, ConnectiveConfig, LocalRateLimiter, RetryConfig, recording
from shared.logging import configure
from shared.telemetry.redaction import RedactingLogRecordProcessor, RedactingSpanProcessor
from shared.telemetry.setup import install_sdk

PROJECT_ROOT = Path(__file__).resolve().parent.parent
USER, PASSWORD = "bench", "bench-password-1"
ROUNDS = 400
WARMUP = 30


@dataclass
class RunningSandbox:
    base_url: str
    root_url: str

    def admin(self, method: str, path: str, **kwargs: object) -> requests.Response:
        response = requests.request(method, f"{self.root_url}/_sandbox/{path}", timeout=30, **kwargs)  # type: ignore[arg-type]
        response.raise_for_status()
        return response


@contextlib.contextmanager
def running_sandbox(*knobs: str) -> Iterator[RunningSandbox]:
    """A sandbox of the benchmark's own, throttle off unless the knobs say otherwise."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "devtools.sandbox", "--host", "127.0.0.1", "--port", str(port),
         "--user", f"{USER}:{PASSWORD}", "--rate-calls", "0", *knobs],
        cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        wait_for_port(port, timeout_s=15)
        root = f"http://127.0.0.1:{port}"
        yield RunningSandbox(base_url=f"{root}/webportalapi/v3", root_url=root)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()


def bench_client(base_url: str, **config: object) -> ConnectiveClient:
    cfg = ConnectiveConfig(base_url=base_url, username=USER, password=PASSWORD,
                           retry=RetryConfig(max_attempts=3, total_s=30), **config)  # type: ignore[arg-type]
    return ConnectiveClient(cfg, LocalRateLimiter(1_000_000, 60))


class _Dropped(SpanExporter, LogRecordExporter):
    """Accepts every batch and keeps nothing: the cost measured is the call's, not the network's."""

    def export(self, batch: Any) -> Any:
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


def install_tracing() -> None:
    """The providers Azure gets (shared.telemetry.setup), with batch processors feeding `_Dropped`."""
    dropped = _Dropped()
    install_sdk([RedactingSpanProcessor(), BatchSpanProcessor(dropped)],
                [RedactingLogRecordProcessor(), BatchLogRecordProcessor(dropped)],
                [PeriodicExportingMetricReader(ConsoleMetricExporter(out=io.StringIO()), export_interval_millis=5000)])


def _median_ms(bare_call: Callable[[], None], client_call: Callable[[], None], label: str) -> tuple[float, float]:
    for _ in range(WARMUP):
        bare_call()
        client_call()
    bare_times: list[float] = []
    client_times: list[float] = []
    print(f"client_overhead{label}: {ROUNDS} alternating Get Package Status calls each way")
    for index in range(ROUNDS):
        pairs = ((bare_call, bare_times), (client_call, client_times))
        for call, times in pairs if index % 2 == 0 else reversed(pairs):
            started = time.perf_counter()
            call()
            times.append(time.perf_counter() - started)
            # The client's spans and metrics are made on a background thread once an SDK is installed:
            # wait for them outside the timing, so that work is not charged to the next bare call.
            recording.flush()
    return statistics.median(bare_times) * 1000, statistics.median(client_times) * 1000


def run() -> dict[str, object]:
    configure(logging.INFO, io.StringIO())  # the client's log lines are formatted, as in production
    with running_sandbox() as sandbox:
        client = bench_client(sandbox.base_url)
        package_id = client.create_package({"initiator": "bench@example.com", "package_name": "bench"}).package_id
        url = f"{sandbox.base_url}/packages/{package_id}/status"
        bare = requests.Session()
        bare.auth = (USER, PASSWORD)

        def bare_call() -> None:
            bare.get(url, timeout=(5, 60)).raise_for_status()

        def client_call() -> None:
            client.get_package_status(package_id)

        bare_ms, client_ms = _median_ms(bare_call, client_call, "")
        install_tracing()  # for good: the SDK's providers are set once per process
        # In the app every Connective call runs inside a recorded span (the invocation, a package step).
        with trace.get_tracer(__name__).start_as_current_span("bench.client_overhead"):
            traced_bare_ms, traced_client_ms = _median_ms(bare_call, client_call, " (traced)")
    return {
        "client.bare_call_ms": round(bare_ms, 3),
        "client.client_call_ms": round(client_ms, 3),
        "client.overhead_ms": round(client_ms - bare_ms, 3),
        "client.overhead_ratio": round(client_ms / bare_ms, 3),
        "client.client_call_traced_ms": round(traced_client_ms, 3),
        "client.overhead_ratio_traced": round(traced_client_ms / traced_bare_ms, 3),
    }


if __name__ == "__main__":
    results = run()
    for key, value in results.items():
        print(f"{key} = {value}")
    for figure in ("client.overhead_ratio", "client.overhead_ratio_traced"):
        print(f"goal: {figure} <= 1.2 -> {'met' if results[figure] <= 1.2 else 'MISSED'}")  # type: ignore[operator]
