"""Latency of the Connective callback route through the local host, against Azurite, and what it costs.

    .venv/bin/python -m bench.callback_latency [--callbacks 1000] [--packages 20] [--repeat 3] [--cpu-hog N]

A fresh LocalWorld (one host worker) gets `--packages` single PDFs: half are auto-signed and
archived, then auto-sign is switched off and the other half stay Pending. One caller then POSTs
`--callbacks` callbacks, in turns over the packages, the way the sandbox delivers them (one after
the other, keep-alive): for archived packages a repeat of the final callback (`Finished`), for
pending ones an actor callback (`Pending`, actor `Available`). Every URL carries a valid token and
the function key, as the URLs registered at Connective do.

`--repeat` sends the burst that many times in the same world (after the same preparation), and
`--cpu-hog N` runs N busy processes beside the world while the callbacks are sent (bench/_load.py).

Figures: `callback.p50_ms`, `callback.p99_ms` (the caller's view: request sent to answer read; with
`--repeat`, the median of the bursts' figures, with `.min` and `.max`),
`callback.count`, `callback.errors` (answers other than 200), and `callback.connective_calls`:
the Connective calls the callbacks caused, from the first callback to 2 x STATUS_REFRESH_DELAY_S
after the last (duplicates of final packages cost none; pending ones share one deferred read per
package and refresh delay).
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import requests
from azure.storage.blob import BlobServiceClient

from bench._inputs import DroppedInput, InputSpec, drop
from bench._load import cpu_hog, load_average, summarise
from bench._progress import read_rows, wait_until_settled
from bench._world import FAST_SETTINGS, BenchWorld
from shared.config import Settings
from shared.pipeline.tokens import callback_url
from shared.storage.clients import StorageClients
from shared.storage.packages import PackageRecord
from shared.storage.store import Store

REFRESH_DELAY_S = float(FAST_SETTINGS["STATUS_REFRESH_DELAY_S"])


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def _calls(bench: BenchWorld) -> int:
    return sum(bench.stats()["calls_by_operation"].values())


def _prepare(bench: BenchWorld, packages: int) -> list[PackageRecord]:
    """Half of the packages archived, half pending; their rows."""
    blobs = BlobServiceClient.from_connection_string(bench.connection_string)
    store = Store(StorageClients(bench.connection_string))
    signed = [drop(blobs, InputSpec(f"cb-final-{n}")) for n in range(packages // 2)]
    wait_until_settled(store, signed, timeout_s=120)
    bench.configure(auto_sign=False)
    pending = [drop(blobs, InputSpec(f"cb-pending-{n}")) for n in range(packages - packages // 2)]
    rows = _wait_for_pending(store, pending)
    archived = [row for ref, row in rows.items() if ref in {i.ref for i in signed}]
    return archived + [rows[i.ref] for i in pending]


def _wait_for_pending(store: Store, inputs: list[DroppedInput], timeout_s: float = 120) -> dict[str, PackageRecord]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        rows = read_rows(store) or {}
        if all(i.ref in rows and rows[i.ref].status.value == "Pending" for i in inputs):
            return rows
        time.sleep(0.5)
    raise RuntimeError("the pending packages did not reach Pending")


def _callback(settings: Settings, row: PackageRecord) -> tuple[str, dict[str, Any]]:
    final = row.status.value == "Archived"
    status = "Finished" if final else "Pending"
    body: dict[str, Any] = {"PackageId": row.connective_package_id, "PackageStatus": status,
                            "ExternalPackageReference": row.ref}
    if not final:
        body.update(ActorId=row.signers[0].get("actor_id") if row.signers else None, ActorStatus="Available")
    url = f"{callback_url(settings, row.ref)}?packageId={row.connective_package_id}&packageStatus={status}"
    return url, body


def burst(bench: BenchWorld, session: requests.Session, requests_to_send: list[tuple[str, dict[str, Any]]],
          callbacks: int) -> dict[str, object]:
    """Send `callbacks` callbacks one after the other; their latencies, errors and the calls they caused."""
    calls_before = _calls(bench)
    latencies: list[float] = []
    errors = 0
    for index in range(callbacks):
        url, body = requests_to_send[index % len(requests_to_send)]
        started = time.perf_counter()
        response = session.post(url, json=body, timeout=30)
        latencies.append((time.perf_counter() - started) * 1000)
        errors += response.status_code != 200
    time.sleep(2 * REFRESH_DELAY_S)
    figures: dict[str, object] = {
        "callback.p50_ms": round(statistics.median(latencies), 1),
        "callback.p99_ms": round(percentile(latencies, 0.99), 1),
        "callback.count": callbacks,
        "callback.errors": errors,
        "callback.connective_calls": _calls(bench) - calls_before,
    }
    print(f"  p50 {figures['callback.p50_ms']} ms, p99 {figures['callback.p99_ms']} ms, "
          f"errors {errors} (load average {load_average()})", flush=True)
    return figures


def run(callbacks: int = 1000, packages: int = 20, repeat: int = 1, cpu_hog_processes: int = 0) -> dict[str, object]:
    with BenchWorld(workers=1) as bench:
        rows = _prepare(bench, packages)
        settings = Settings(bench.world.settings)
        requests_to_send = [_callback(settings, row) for row in rows]
        session = requests.Session()
        print(f"{repeat} x {callbacks} callbacks over {len(rows)} packages", flush=True)
        with cpu_hog(cpu_hog_processes):
            runs = [burst(bench, session, requests_to_send, callbacks) for _ in range(max(1, repeat))]
    results = summarise(runs, ["callback.p50_ms", "callback.p99_ms"])
    if cpu_hog_processes:
        results["callback.cpu_hog"] = cpu_hog_processes
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.callback_latency", description=__doc__.split("\n\n")[0])
    parser.add_argument("--callbacks", type=int, default=1000)
    parser.add_argument("--packages", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=1, help="bursts of callbacks; figures are their medians")
    parser.add_argument("--cpu-hog", type=int, default=0, help="busy processes beside the world")
    args = parser.parse_args(argv)
    for key, value in run(args.callbacks, args.packages, args.repeat, args.cpu_hog).items():
        print(f"{key} = {value}")


if __name__ == "__main__":
    main()
