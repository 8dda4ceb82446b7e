"""Bulk send: a job paced by the compressed budget of bench.saturation, and the memory of a big recipients file.

    .venv/bin/python -m bench.bulk [--rows 300] [--workers 2] [--rate-calls 100] [--rate-window 10]
                                   [--rss-rows 5000]

Pacing: a LocalWorld (Azurite, the sandbox auto-signing after 1 s, the local host with `--workers`
workers and the table limiter, time compressed as in bench.saturation) gets one bulk send of `--rows`
recipients (one single-document package each) by uploading its folder to signing-bulk/. The run ends
when summary.json is final.

- `bulk.budget_use_pct`: the mean fill of the sliding window (bench.saturation's measure, from the
  sandbox's acceptance times) from `WARM_UP_WINDOWS` windows after the first accepted call to the last
  summary.json read that still showed a row waiting to be created: while the job has rows to create,
  the budget should be spent in full (goal >= 95). The bulk share caps only creation calls; the job's
  own status reads and archives take the rest.
- `bulk.throttled_429`: 429s the sandbox answered (goal 0).
- `bulk.last_archived_s`: from the upload of job.json to the final summary; `bulk.ideal_s`: rows x 4
  calls / the budget (what the budget allows for Create Instant Package, a status read and two
  downloads per package); `bulk.time_ratio`: the two divided.

Memory: with the host stopped, a child process (a worker's imports, the same storage) starts a job of
`--rss-rows` rows and runs its steps in-process until every row is read and the report written (the
budget raised so nothing waits for creation; no Connective call is made).

- `bulk.baseline_rss_mb`: the child's peak RSS before the job (imports, storage clients warmed up).
- `bulk.peak_rss_mb`: its peak RSS after the job; `bulk.rss_growth_mb`: the difference (goal <= 50).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import subprocess
import sys
import time
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import BlobServiceClient

from bench._world import BenchWorld
from bench.saturation import NO_MAINTENANCE, WARM_UP_WINDOWS, scaled_limiter_settings
from shared.storage import names
from tests.limiter.windows import window_fill
from tests.sandbox.pdfs import make_pdf

JOB = "bench-bulk"
RSS_JOB = "bench-bulk-rss"
CALLS_PER_PACKAGE = 4
POLL_S = 2.0
# Rows of the memory run: five steps of BULK_STEP_ROWS (1,000) rows, enough to show that memory does not grow
# with the file; the child writes every row to Azurite (about 200 s for 10,000 rows on the 2-core machine).
RSS_ROWS = 5000
LIMIT_FACTOR = 4.0  # the run stops at this many times the ideal time (plus a minute)

_RSS_CHILD = r"""
import json, resource, sys
import function_app  # noqa: F401  (what a worker imports)
from shared.bulk import feeder, jobs
from shared.config import Settings
from shared.storage import names
from shared.storage.store import Store

settings = Settings(json.loads(sys.argv[1]))
store = Store.from_settings(settings)
job_id = sys.argv[2]
store.bulk.get(job_id)  # warm the table client
baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
job = jobs.start_from_blob(store, settings, store.clients.container(names.BULK_CONTAINER)
                           .get_blob_client(f"{job_id}/job.json"))
while job is not None and not job.read_done and not job.state.is_final:
    job = feeder.run_step(store, settings, job_id, job.step, lambda: None)
    job = store.bulk.get(job_id)
from shared.bulk.report import write_files
counts = write_files(store, job, settings)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"baseline_kb": baseline, "peak_kb": peak, "rows": counts.good + counts.skipped}))
"""


def _csv(rows: int) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["email", "FirstName", "LastName", "language", "EmployeeNumber"])
    for n in range(rows):
        writer.writerow([f"employee{n:05d}@example.com", f"First{n}", f"Last{n}", "en", f"E{n:05d}"])
    return out.getvalue().encode("utf-8")


def upload_job(service: BlobServiceClient, job: str, rows: int) -> None:
    container = service.get_container_client(names.BULK_CONTAINER)
    container.get_blob_client(f"{job}/policy.pdf").upload_blob(make_pdf(markers={1: ["#SIGN1#"]}), overwrite=True)
    container.get_blob_client(f"{job}/recipients.csv").upload_blob(_csv(rows), overwrite=True)
    spec = {"schemaVersion": "1", "name": "Policy 2027 - {FirstName} {LastName} ({EmployeeNumber})",
            "documents": [{"path": "policy.pdf"}], "recipients": "recipients.csv"}
    container.get_blob_client(f"{job}/job.json").upload_blob(json.dumps(spec).encode(), overwrite=True)


def _summary(service: BlobServiceClient, job: str) -> dict[str, Any] | None:
    try:
        return dict(json.loads(service.get_blob_client(names.BULK_CONTAINER, f"{job}/summary.json")
                               .download_blob().readall()))
    except ResourceNotFoundError:
        return None


def budget_settings(calls: int, window_s: float) -> dict[str, str]:
    scaled = scaled_limiter_settings(60.0 / window_s)
    return {"CONNECTIVE_RATE_CALLS": str(calls), "CONNECTIVE_RATE_WINDOW_S": f"{window_s:g}",
            "CONNECTIVE_RATE_LIMITER": "table", "MAINTENANCE_SCHEDULE": NO_MAINTENANCE,
            "BULK_REPORT_INTERVAL_S": f"{POLL_S:g}", **scaled}


def pacing(bench: BenchWorld, rows: int, calls: int, window_s: float) -> dict[str, float]:
    service = BlobServiceClient.from_connection_string(bench.connection_string)
    ideal_s = rows * CALLS_PER_PACKAGE / calls * window_s
    limit_s = ideal_s * LIMIT_FACTOR + 60
    started = time.time()
    upload_job(service, JOB, rows)
    creating_until = started
    summary: dict[str, Any] = {}
    while time.time() - started < limit_s:
        summary = _summary(service, JOB) or {}
        statuses = summary.get("statuses", {})
        if not summary.get("recipientsRead", False) or statuses.get("Received", 0) or statuses.get("Creating", 0):
            creating_until = time.time()
        if summary.get("final"):
            break
        print(f"  {time.time() - started:6.1f}s  {summary.get('state', '-')}: "
              + ", ".join(f"{k} {v}" for k, v in sorted(statuses.items())), flush=True)
        time.sleep(POLL_S)
    seconds = time.time() - started
    stats = bench.stats(times=True)
    user = bench.world.sandbox_credentials[0]
    accepted = sorted(stats["accepted_times_by_user"].get(user, []))
    start = (accepted[0] if accepted else started) + WARM_UP_WINDOWS * window_s
    use = window_fill(accepted, start, creating_until, calls, window_s) if creating_until > start else 0.0
    archived = int(summary.get("statuses", {}).get("Archived", 0))
    return {
        "bulk.budget_use_pct": round(100 * use, 1),
        "bulk.throttled_429": int(stats["throttled_by_user"].get(user, 0)),
        "bulk.archived": archived,
        "bulk.accepted_calls": len(accepted),
        "bulk.last_archived_s": round(seconds, 1),
        "bulk.ideal_s": round(ideal_s, 1),
        "bulk.time_ratio": round(seconds / ideal_s, 2) if summary.get("final") else 0.0,
    }


def memory(bench: BenchWorld, rows: int, env: dict[str, str]) -> dict[str, float]:
    service = BlobServiceClient.from_connection_string(bench.connection_string)
    upload_job(service, RSS_JOB, rows)
    settings = {**env, "DocumentStorage": bench.connection_string, "CONNECTIVE_RATE_CALLS": "1000000",
                "BULK_RATE_SHARE": "1", "BULK_STEP_ROWS": "1000"}
    done = subprocess.run([sys.executable, "-c", _RSS_CHILD, json.dumps(settings), RSS_JOB], capture_output=True,
                          text=True, timeout=3600, check=True)
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    baseline, peak = figures["baseline_kb"] / 1024, figures["peak_kb"] / 1024
    return {"bulk.rss_rows": figures["rows"], "bulk.baseline_rss_mb": round(baseline, 1),
            "bulk.peak_rss_mb": round(peak, 1), "bulk.rss_growth_mb": round(peak - baseline, 1)}


def run(rows: int = 300, workers: int = 2, rate_calls: int = 100, rate_window_s: float = 10.0,
        rss_rows: int = RSS_ROWS) -> dict[str, object]:
    settings = budget_settings(rate_calls, rate_window_s)
    results: dict[str, object] = {}
    with BenchWorld(workers=workers, sandbox_knobs=["--rate-calls", str(rate_calls),
                                                    "--rate-window", f"{rate_window_s:g}"],
                    settings=settings) as bench:
        print(f"bulk: {rows} rows, {workers} workers, {rate_calls} calls / {rate_window_s:g} s", flush=True)
        results.update(pacing(bench, rows, rate_calls, rate_window_s))
        host = bench.world.host
        assert host is not None
        env = dict(host.env)
        host.stop()  # the memory run's rows must not be created: nothing consumes package-requests now
        if rss_rows:
            print(f"bulk memory: {rss_rows} rows in a child process", flush=True)
            results.update(memory(bench, rss_rows, env))
    for key, value in results.items():
        print(f"  {key} = {value}", flush=True)
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=300)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rate-calls", type=int, default=100)
    parser.add_argument("--rate-window", type=float, default=10.0)
    parser.add_argument("--rss-rows", type=int, default=RSS_ROWS)
    args = parser.parse_args(argv)
    run(args.rows, args.workers, args.rate_calls, args.rate_window, args.rss_rows)


if __name__ == "__main__":
    main()
