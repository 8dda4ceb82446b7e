"""Helpers for the bulk send tests: a job folder in signing-bulk/, recipients files, steps run by hand."""

from __future__ import annotations

import csv
import io
import json
import uuid
from typing import Any

from shared.bulk import feeder, jobs
from shared.bulk.report import REPORT_FILE, SUMMARY_FILE
from shared.storage import names
from shared.storage.bulk import BulkJob
from shared.storage.store import Store
from tests.sandbox.pdfs import make_pdf

HEADER = ["email", "FirstName", "LastName", "language", "Department"]


def job_spec(**overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"schemaVersion": "1", "name": "Policy 2027 - {FirstName} {LastName}",
                            "documents": [{"path": "policy.pdf", "name": "Policy 2027"}],
                            "recipients": "recipients.csv"}
    spec.update(overrides)
    return spec


def people(count: int, start: int = 0, domain: str = "example.com") -> list[list[str]]:
    return [[f"person{n}@{domain}", f"First{n}", f"Last{n}", "en", "Sales"] for n in range(start, start + count)]


def csv_bytes(rows: list[list[str]], header: list[str] | None = None) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header or HEADER)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


def new_job_id() -> str:
    return f"job-{uuid.uuid4().hex[:10]}"


def upload(store: Store, job: str, name: str, data: bytes) -> None:
    store.clients.container(names.BULK_CONTAINER).get_blob_client(f"{job}/{name}").upload_blob(data, overwrite=True)


def upload_job(store: Store, job: str, spec: dict[str, Any], recipients: bytes | None,
               pdf: bytes | None = None) -> None:
    """The documents and recipients first, job.json last: job.json is the trigger."""
    upload(store, job, "policy.pdf", pdf if pdf is not None else make_pdf(markers={1: ["#SIGN1#"]}))
    if recipients is not None:
        upload(store, job, spec.get("recipients", "recipients.csv"), recipients)
    upload(store, job, "job.json", json.dumps(spec).encode())


def job_blob(store: Store, job: str) -> Any:
    return store.clients.container(names.BULK_CONTAINER).get_blob_client(f"{job}/job.json")


def report_rows(store: Store, job: str) -> list[dict[str, str]]:
    data = store.clients.container(names.BULK_CONTAINER).download_blob(f"{job}/{REPORT_FILE}").readall()
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"))))


def summary(store: Store, job: str) -> dict[str, Any]:
    data = store.clients.container(names.BULK_CONTAINER).download_blob(f"{job}/{SUMMARY_FILE}").readall()
    return json.loads(data)


def no_client() -> Any:
    raise AssertionError("this step must not call Connective")


def run_steps(store: Store, settings: Any, job_id: str, until: Any, limit: int = 200) -> BulkJob:
    """Run the job's steps in this process (no host) until `until(job)` holds."""
    for _ in range(limit):
        job = store.bulk.get(job_id)
        assert job is not None
        if until(job):
            return job
        feeder.run_step(store, settings, job_id, job.step, no_client)
    raise AssertionError(f"the job did not get there in {limit} steps: {store.bulk.get(job_id)}")


__all__ = ["jobs"]
