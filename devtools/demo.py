"""`make demo`: the bundled samples through the whole pipeline, unattended, with a summary.

It starts Azurite, the Connective sandbox (auto-signing, rejecting signers whose email contains
"reject") and the local host with two workers, then drops:

- single PDFs in signing-inbox/ with their signers in blob metadata,
- a PDF in signing-inbox/hr/, whose signers come from the `hr` routing profile,
- two manifest batches in signing-batches/ (three documents with two ordered signers, and one
  that a signer rejects),
- a file that is not a PDF, which must be rejected with an error report and kept,
- a bulk send (samples/bulk/policy-2027): one policy to six recipients, one of whom rejects, with
  three bad rows that the report lists with their reasons.

It prints each status change as it happens, the bulk send's progress from its summary.json, and ends
with a table (each input, its package, its final status and what was archived) and the bulk send's
report.csv. The exit code is 0 when every input reached the state it should.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import BlobServiceClient, ContentSettings

from devtools.azurite import PROJECT_ROOT
from devtools.world import LocalWorld
from shared.storage import names
from shared.storage.clients import StorageClients
from shared.storage.packages import PackageRecord
from shared.storage.status import PackageStatus
from shared.storage.store import Store

SAMPLES = PROJECT_ROOT / "samples"
BULK_SAMPLE = SAMPLES / "bulk" / "policy-2027"
BULK_JOB = "policy-2027"
# What the sample bulk send must end with: frank.reject@ rejects, three rows are bad.
BULK_EXPECTED = {"Archived": 5, "Rejected": 1, "Skipped": 3}
SETTLED = {PackageStatus.ARCHIVED, PackageStatus.REJECTED, PackageStatus.REVOKED, PackageStatus.FAILED,
           PackageStatus.INPUT_REJECTED}


@dataclass(frozen=True)
class DemoInput:
    container: str
    blob_name: str
    source: Path | None
    expected: PackageStatus
    metadata: dict[str, str] | None = None
    content: bytes | None = None

    @property
    def uri(self) -> str:
        return f"{self.container}/{self.blob_name}"


def _metadata_for(pdf: Path) -> dict[str, str] | None:
    sidecar = pdf.with_suffix(".metadata.json")
    return json.loads(sidecar.read_text()) if sidecar.exists() else None


def demo_inputs() -> list[DemoInput]:
    inputs = []
    for pdf in sorted((SAMPLES / "inbox").glob("*.pdf")):
        expected = PackageStatus.REJECTED if "reject" in pdf.stem else PackageStatus.ARCHIVED
        inputs.append(DemoInput(names.INBOX_CONTAINER, pdf.name, pdf, expected, _metadata_for(pdf)))
    inputs.append(DemoInput(names.INBOX_CONTAINER, "hr/employment-contract.pdf",
                            SAMPLES / "inbox" / "plain-letter.pdf", PackageStatus.ARCHIVED))
    for batch in sorted((SAMPLES / "batches").iterdir()):
        expected = PackageStatus.REJECTED if "reject" in batch.name else PackageStatus.ARCHIVED
        inputs.append(DemoInput(names.BATCHES_CONTAINER, f"{batch.name}/manifest.json",
                                batch / "manifest.json", expected))
    inputs.append(DemoInput(names.INBOX_CONTAINER, "scanner-glitch.pdf", None, PackageStatus.INPUT_REJECTED,
                            {"signers": "Anna Peeters <anna.peeters@example.com>"},
                            content=b"this scanner wrote text, not a PDF\n"))
    return inputs


def _upload(service: BlobServiceClient, container: str, name: str, data: bytes,
            metadata: dict[str, str] | None = None) -> None:
    content_type = "application/json" if name.endswith(".json") else "application/pdf"
    service.get_blob_client(container, name).upload_blob(
        data, overwrite=True, metadata=metadata, content_settings=ContentSettings(content_type=content_type))


def drop_inputs(service: BlobServiceClient, inputs: list[DemoInput]) -> None:
    _upload(service, names.CONFIG_CONTAINER, "routing-profiles.json",
            (SAMPLES / "config" / "routing-profiles.json").read_bytes())
    for item in inputs:
        if item.container == names.BATCHES_CONTAINER and item.source is not None:
            # The documents go first: the manifest is the trigger, and it must find them in place.
            batch = item.blob_name.split("/")[0]
            for document in sorted(item.source.parent.glob("*.pdf")):
                _upload(service, item.container, f"{batch}/{document.name}", document.read_bytes())
        data = item.content if item.content is not None else item.source.read_bytes()  # type: ignore[union-attr]
        _upload(service, item.container, item.blob_name, data, item.metadata)
        print(f"  dropped {item.uri}", flush=True)


def drop_bulk_send(service: BlobServiceClient) -> None:
    """The sample job's documents and recipients first, job.json last: job.json starts the job."""
    for name in ("policy.pdf", "recipients.csv", "job.json"):
        _upload(service, names.BULK_CONTAINER, f"{BULK_JOB}/{name}", (BULK_SAMPLE / name).read_bytes())
    print(f"  dropped {names.BULK_CONTAINER}/{BULK_JOB}/ (job.json, recipients.csv, policy.pdf)", flush=True)


class BulkProgress:
    """Prints the bulk send's summary.json each time its counts change."""

    def __init__(self, service: BlobServiceClient) -> None:
        self.service = service
        self.shown = ""
        self.summary: dict[str, object] = {}

    def poll(self, elapsed_s: float) -> bool:
        """True once the bulk send is final."""
        try:
            data = self.service.get_blob_client(names.BULK_CONTAINER, f"{BULK_JOB}/summary.json").download_blob()
            self.summary = json.loads(data.readall())
        except ResourceNotFoundError:
            return False
        counts = ", ".join(f"{status} {count}" for status, count in dict(self.summary["statuses"]).items())  # type: ignore[call-overload]
        line = f"{self.summary['state']}: {counts} (ETA {self.summary['etaSeconds']} s)"
        if line != self.shown:
            self.shown = line
            print(f"  {elapsed_s:5.1f}s  {'bulk send ' + BULK_JOB:<45} {line}", flush=True)
        return bool(self.summary.get("final"))


def print_bulk_report(service: BlobServiceClient, progress: BulkProgress) -> bool:
    print(f"\nBulk send {BULK_JOB}: {names.BULK_CONTAINER}/{BULK_JOB}/report.csv")
    try:
        data = service.get_blob_client(names.BULK_CONTAINER, f"{BULK_JOB}/report.csv").download_blob().readall()
    except ResourceNotFoundError:
        print("  (no report yet)")
        return False
    rows = sorted(csv.DictReader(io.StringIO(data.decode("utf-8"))), key=lambda row: int(row["line"]))
    print(f"{'line':>4}  {'key':<28} {'package':<28} {'status':<10} reason / archived path")
    print("-" * 120)
    for row in rows:
        print(f"{row['line']:>4}  {row['key'][:28]:<28} {row['packageRef']:<28} {row['status']:<10} "
              f"{row['reason'] or row['archivedPath']}")
    as_expected = progress.summary.get("statuses") == BULK_EXPECTED and progress.summary.get("final") is True
    if not as_expected:
        print(f"  <-- expected a final report with {BULK_EXPECTED}, got {progress.summary.get('statuses')}")
    return as_expected


def _rows_by_source(store: Store) -> dict[str, PackageRecord]:
    return {row.source_uri: row for row in store.packages.query("RowKey eq @row", {"row": "package"})}


def follow(store: Store, inputs: list[DemoInput], timeout_s: float,
           bulk: BulkProgress | None = None) -> dict[str, PackageRecord]:
    """Print each status change until every input (and the bulk send) has settled, or the time is up."""
    seen: dict[str, PackageStatus] = {}
    started = time.monotonic()
    rows: dict[str, PackageRecord] = {}
    while time.monotonic() - started < timeout_s:
        rows = _rows_by_source(store)
        for item in inputs:
            row = rows.get(item.uri)
            if row is not None and seen.get(item.uri) != row.status:
                seen[item.uri] = row.status
                print(f"  {time.monotonic() - started:5.1f}s  {item.uri:<45} {row.status.value}", flush=True)
        settled = sum(1 for item in inputs if item.uri in rows and rows[item.uri].status in SETTLED)
        bulk_final = bulk is None or bulk.poll(time.monotonic() - started)
        if settled == len(inputs) and bulk_final:
            break
        time.sleep(0.5)
    return rows


def print_summary(inputs: list[DemoInput], rows: dict[str, PackageRecord]) -> bool:
    print("\nSummary")
    print(f"{'input':<45} {'package':<26} {'status':<14} archived files / reason")
    print("-" * 120)
    all_as_expected = True
    for item in inputs:
        row = rows.get(item.uri)
        status = row.status.value if row else "(no row)"
        as_expected = row is not None and row.status == item.expected
        all_as_expected &= as_expected
        marker = "" if as_expected else f"   <-- expected {item.expected.value}"
        print(f"{item.uri:<45} {(row.ref if row else '-'):<26} {status:<14}{marker}")
        if row is None:
            continue
        if row.status == PackageStatus.ARCHIVED:
            for archived in row.archived_files:
                print(f"{'':<87}{archived.get('blob') or archived.get('name')} ({archived.get('size', '?')} bytes)")
        elif row.final_reason:
            print(f"{'':<87}{row.final_reason}")
        if row.error_report:
            print(f"{'':<87}error report: {row.error_report}")
    return all_as_expected


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the bundled samples through the whole pipeline.")
    parser.add_argument("--timeout", type=float, default=180, help="seconds to wait for every input to settle")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)

    print("Starting Azurite, the Connective sandbox (auto-sign) and the local Functions host...", flush=True)
    world = LocalWorld(workers=args.workers, settings_file=None,
                       sandbox_args=["--auto-sign", "--auto-sign-delay", "2"],
                       extra_settings={"BULK_REPORT_INTERVAL_S": "2"})
    with world:
        print(f"  host {world.host_url}, sandbox {world.sandbox_url}", flush=True)
        store = Store(StorageClients(world.storage_connection_string))
        service = BlobServiceClient.from_connection_string(world.storage_connection_string)
        inputs = demo_inputs()
        print(f"\nDropping {len(inputs)} inputs", flush=True)
        drop_inputs(service, inputs)
        drop_bulk_send(service)
        print("\nFollowing the packages (signers act in the sandbox after a few seconds)", flush=True)
        progress = BulkProgress(service)
        rows = follow(store, inputs, args.timeout, progress)
        ok = print_summary(inputs, rows)
        ok = print_bulk_report(service, progress) and ok
        print(f"\nSigned documents and audit proofs are in the '{names.SIGNED_CONTAINER}' container; "
              f"error reports in '{names.ERRORS_CONTAINER}'.")
        print("Demo " + ("completed: every input reached its expected state." if ok
                         else "FAILED: some inputs did not reach their expected state."))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
