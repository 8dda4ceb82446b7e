"""The report of a bulk send: `signing-bulk/{job}/report.csv` and `summary.json`, and the progress counts.

report.csv has one line per row: the good rows of every pass (each with its package), then the rows
the latest pass skipped, with the reason. Both files are rewritten while the job runs and are final
once the job is (`summary.json` then says `"final": true`). The CSV is written to a spooled temporary
file and streamed to the blob, so a job of any size is reported in flat memory.
"""

from __future__ import annotations

import csv
import io
import json
import math
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from azure.storage.blob import ContentSettings

from shared.bulk.pacing import calls_per_package, creation_calls_per_package, share_calls
from shared.config import Settings
from shared.storage import names
from shared.storage.bulk import SKIPPED, BulkJob, BulkRow, JobState
from shared.storage.status import PackageStatus
from shared.storage.store import Store

REPORT_FILE = "report.csv"
SUMMARY_FILE = "summary.json"
REPORT_COLUMNS = ("line", "key", "packageRef", "status", "reason", "archivedPath")
# A row in one of these has nothing more to come; Finished still waits for its archive.
FINAL_ROW_STATUSES = frozenset({PackageStatus.ARCHIVED.value, PackageStatus.REJECTED.value,
                                PackageStatus.REVOKED.value, PackageStatus.FAILED.value,
                                PackageStatus.INPUT_REJECTED.value, SKIPPED})
UNCREATED_ROW_STATUSES = (PackageStatus.RECEIVED.value, PackageStatus.CREATING.value)
OPEN_ROW_STATUSES = (*UNCREATED_ROW_STATUSES, PackageStatus.PENDING.value, PackageStatus.EXPIRED.value)
MAX_FAILURES_SHOWN = 100
_SPOOL_BYTES = 1024 * 1024


@dataclass
class Tally:
    statuses: dict[str, int] = field(default_factory=dict)
    good: int = 0
    skipped: int = 0
    failures: list[BulkRow] = field(default_factory=list)  # skipped rows and refused packages, the first ones

    @property
    def open(self) -> int:
        return self.good + self.skipped - sum(self.statuses.get(status, 0) for status in FINAL_ROW_STATUSES)

    def count(self, row: BulkRow) -> None:
        self.statuses[row.status] = self.statuses.get(row.status, 0) + 1
        if row.skipped:
            self.skipped += 1
        else:
            self.good += 1
        failed = row.skipped or row.status in (PackageStatus.INPUT_REJECTED.value, PackageStatus.FAILED.value)
        if failed and len(self.failures) < MAX_FAILURES_SHOWN:
            self.failures.append(row)


def current_rows(store: Store, job: BulkJob) -> Any:
    """Good rows of every pass, skipped rows of the latest one."""
    for row in store.bulk.rows(job.job):
        if not row.skipped or row.generation == job.generation:
            yield row


def tally(store: Store, job: BulkJob) -> Tally:
    result = Tally()
    for row in current_rows(store, job):
        result.count(row)
    return result


def unread_rows_estimate(job: BulkJob, rows_read: int) -> int:
    """Rows still unread in the recipients file, from the bytes left and the mean size of a row so far."""
    if job.read_done or job.recipients_size <= job.cursor:
        return 0
    if rows_read == 0:
        return 1
    mean = max(1.0, job.cursor / rows_read)
    return math.ceil((job.recipients_size - job.cursor) / mean)


def eta_seconds(settings: Settings, job: BulkJob, counts: Tally) -> int:
    """Seconds until every row's package is created and, once signed, archived, at the rate budget.

    The time signers take is not in it (nobody knows it); with auto-signing it is the whole job.
    """
    documents = max(1, len(job.documents))
    window_s = settings.connective_rate_window_s
    to_create = sum(counts.statuses.get(status, 0) for status in UNCREATED_ROW_STATUSES)
    to_create += unread_rows_estimate(job, counts.good + counts.skipped)
    to_archive = sum(counts.statuses.get(status, 0) for status in (PackageStatus.PENDING.value,
                                                                      PackageStatus.EXPIRED.value,
                                                                      PackageStatus.FINISHED.value))
    by_share = to_create * creation_calls_per_package(documents) / share_calls(settings)
    calls = to_create * calls_per_package(documents) + to_archive * (calls_per_package(documents)
                                                                      - creation_calls_per_package(documents))
    by_budget = calls / settings.connective_rate_calls
    return math.ceil(max(by_share, by_budget) * window_s)


def summary(settings: Settings, job: BulkJob, counts: Tally) -> dict[str, Any]:
    final = job.state.is_final
    result: dict[str, Any] = {
        "summaryVersion": "1",
        "job": job.job,
        "state": job.state.value,
        "final": final,
        "generation": job.generation,
        "updatedAt": datetime.now(UTC).isoformat(),
        "recipientsFile": f"{names.BULK_CONTAINER}/{job.recipients_blob}" if job.recipients_blob else None,
        "recipientsRead": job.read_done,
        "rows": {"total": counts.good + counts.skipped, "packages": counts.good, "skipped": counts.skipped},
        "statuses": dict(sorted(counts.statuses.items())),
        "etaSeconds": 0 if final else eta_seconds(settings, job, counts),
        "report": f"{names.BULK_CONTAINER}/{job.job}/{REPORT_FILE}",
    }
    if job.reason:
        result["reason"] = job.reason
    if job.error_report:
        result["errorReport"] = job.error_report
    if job.completed_at:
        result["completedAt"] = job.completed_at.isoformat()
    if job.state in (JobState.CANCELLING, JobState.CANCELLED):
        result["cancelled"] = True
    return result


def write_files(store: Store, job: BulkJob, settings: Settings | None = None) -> Tally:
    """Rewrite report.csv and summary.json from the job's rows; returns the counts."""
    counts = Tally()
    container = store.clients.container(names.BULK_CONTAINER)
    with tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES, mode="w+b") as spool:
        text = io.TextIOWrapper(spool, encoding="utf-8", newline="")
        writer = csv.writer(text)
        writer.writerow(REPORT_COLUMNS)
        for row in current_rows(store, job):
            counts.count(row)
            reason = f"{row.code}: {row.reason}" if row.code and row.reason else (row.reason or "")
            writer.writerow((row.line, _safe_cell(row.key), row.package_ref or "", row.status, _safe_cell(reason),
                             row.archive_path or ""))
        text.flush()
        text.detach()
        spool.seek(0)
        container.get_blob_client(f"{job.job}/{REPORT_FILE}").upload_blob(
            spool, overwrite=True, content_settings=ContentSettings(content_type="text/csv; charset=utf-8"))
    settings = settings or Settings.current()
    body = json.dumps(summary(settings, job, counts), indent=2, ensure_ascii=False).encode("utf-8")
    container.get_blob_client(f"{job.job}/{SUMMARY_FILE}").upload_blob(
        body, overwrite=True, content_settings=ContentSettings(content_type="application/json"))
    return counts


def _safe_cell(value: str) -> str:
    """A cell a spreadsheet will not run as a formula (values come from the uploaded file)."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value
