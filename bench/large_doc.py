"""A 100 MiB PDF from the inbox to the archive: the host worker's memory, and its speed against a bare blob copy.

Connective refuses documents over 30 MB; this run lifts that limit in its own world (intake and the
sandbox) to measure streaming on a document well beyond any buffer.

    .venv/bin/python -m bench.large_doc [--repeat 3] [--cpu-hog N]

The PDF is generated (bench.client_streaming's 100 MiB image PDF, plus the text marker `#SIGN1#`
added as an incremental update). A fresh LocalWorld with one host worker first takes a small PDF
from drop to archive, so every module is imported and every connection open; then the worker's
resident memory is the baseline. The large PDF is dropped into signing-inbox/ and followed to
Archived while the RSS of the worker and of its child processes (intake analyses each PDF in a
child) is sampled every 50 ms.

- `large_doc.peak_rss_ratio`: (peak RSS of the worker process - baseline) / document size; goal ≤ 1.5.
  `large_doc.with_children_peak_rss_ratio` counts the worker's child processes too (the PDF
  analysis); `large_doc.{intake,create,archive}_peak_growth_mb` is the worker's peak growth
  during each function's invocations, `..._s` their run time.
- `large_doc.throughput_ratio`: the pipeline's speed over a bare copy's; goal ≥ 0.8. The document
  makes two trips in the pipeline, storage → Connective (creation's multipart upload, hashing the
  bytes on the way; intake's check reads only the few MB of ranges pypdf needs) and Connective →
  storage (the archive's streamed download and block upload);
  their time is the sum of the host's invocation times of intake, creation and archive (queue and
  trigger waits and the sandbox's own work excluded: `large_doc.stamp_wait_s`, the time the archive's
  download waited for the sandbox to stamp the signed file, and `large_doc.upload_handling_s`, the time
  the sandbox spent on the received document before answering the upload (its PDF check and hash,
  Connective's processing rather than a trip), are subtracted). A bare copy makes two trips too: download
  the blob to a file and upload it to a new blob with azure-storage-blob on the same Azurite. So

      throughput_ratio = (2 * size / pipeline seconds) / (2 * size / bare seconds) = bare s / pipeline s

`--repeat N` takes N large documents through the same world one after the other (each with its
own bare copy right after it, under the same load); the speed figures are their medians, with
`.min` and `.max`, and the memory figures the first document's. `--cpu-hog N` runs N busy
processes beside the world from the first large upload to the last bare copy (bench/_load.py).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from azure.storage.blob import BlobServiceClient
from pypdf import PdfReader, PdfWriter
from reportlab.pdfgen import canvas

from bench._inputs import DroppedInput, InputSpec, drop
from bench._load import cpu_hog, load_average, summarise
from bench._memory import WorkerMemory
from bench._progress import wait_until_settled
from bench._world import BenchWorld
from bench.client_streaming import write_large_pdf
from shared.pipeline.inputs import package_ref_for_blob
from shared.storage import names
from shared.storage.clients import StorageClients
from shared.storage.status import PackageStatus
from shared.storage.store import Store

PIPELINE_FUNCTIONS = ("intake_inbox_blob", "create_package_from_request", "archive_signed_package")
SIGNER = "Large Doc <large.doc@example.com>"


def large_pdf_with_marker(path: Path) -> int:
    """The 100 MiB PDF, with `#SIGN1#` written on its page by an incremental update (the images stay as they are)."""
    plain = path.with_suffix(".plain.pdf")
    write_large_pdf(plain)
    overlay_file = path.with_suffix(".overlay.pdf")
    sheet = canvas.Canvas(str(overlay_file), pagesize=(595, 842))
    sheet.drawString(72, 800, "#SIGN1#")
    sheet.save()
    writer = PdfWriter(str(plain), incremental=True)  # writes the original bytes, then the update
    writer.pages[0].merge_page(PdfReader(overlay_file).pages[0])
    writer.write(path)
    plain.unlink()
    return path.stat().st_size


def bare_copy_seconds(blobs: BlobServiceClient, container: str, name: str, folder: Path) -> float:
    """Download a blob to a file and upload it as a new blob, with the SDK's defaults."""
    spool = folder / "bare-copy.pdf"
    started = time.perf_counter()
    with spool.open("wb") as out:
        blobs.get_blob_client(container, name).download_blob().readinto(out)
    with spool.open("rb") as source:
        blobs.get_blob_client(container, f"bare-copy/{name}").upload_blob(source, overwrite=True)
    return time.perf_counter() - started


# Figures that move from run to run with the machine's load: medians over the repetitions.
NOISY = ("large_doc.throughput_ratio", "large_doc.pipeline_s", "large_doc.bare_copy_s", "large_doc.pipeline_mb_s",
         "large_doc.bare_copy_mb_s", "large_doc.intake_s", "large_doc.create_s", "large_doc.archive_s",
         "large_doc.stamp_wait_s", "large_doc.upload_handling_s")


def run(repeat: int = 1, cpu_hog_processes: int = 0) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="large-doc-") as folder_name, \
            BenchWorld(workers=1, settings={"CONNECTIVE_READ_TIMEOUT_S": "600", "INTAKE_MAX_DOCUMENT_MB": "150"},
                       sandbox_knobs=["--max-document-mb", "0"]) as bench:
        folder = Path(folder_name)
        document = folder / "large.pdf"
        size = large_pdf_with_marker(document)
        print(f"large_doc: {size / 2**20:.1f} MiB PDF; warming up with a small one", flush=True)
        blobs = BlobServiceClient.from_connection_string(bench.connection_string)
        store = Store(StorageClients(bench.connection_string))
        warm = drop(blobs, InputSpec("warm-up"))
        wait_until_settled(store, [warm], timeout_s=120)
        with cpu_hog(cpu_hog_processes):
            runs = [one_document(bench, blobs, store, document, size, f"large-{index}.pdf", folder)
                    for index in range(max(1, repeat))]
    results = summarise(runs, NOISY)
    if cpu_hog_processes:
        results["large_doc.cpu_hog"] = cpu_hog_processes
    return results


def one_document(bench: BenchWorld, blobs: BlobServiceClient, store: Store, document: Path, size: int, name: str,
                 folder: Path) -> dict[str, object]:
    """Take the document from the inbox to the archive, then copy it bare; this pass's figures."""
    assert bench.world.host is not None
    memory = WorkerMemory(bench.world.host)
    sampler, baseline_own, baseline_total = memory.sampler, memory.baseline_own, memory.baseline_total
    with document.open("rb") as source:
        etag = blobs.get_blob_client(names.INBOX_CONTAINER, name).upload_blob(
            source, metadata={"signers": SIGNER})["etag"]
    ref = package_ref_for_blob("inb", names.INBOX_CONTAINER, name, etag)
    row = wait_until_settled(store, [DroppedInput(InputSpec(name), ref, (name,))], timeout_s=900).get(ref)
    memory.stop()
    if row is None or row.status is not PackageStatus.ARCHIVED:
        raise RuntimeError(f"the large document did not reach Archived: {row and row.model_dump()}")
    lines = memory.lines()
    calls = invocations(lines, PIPELINE_FUNCTIONS)
    # The sandbox's signing is not the pipeline's time: a download that comes before the sandbox has
    # stamped the signed file waits for the stamp (a pypdf rewrite of the whole document, seconds of CPU under
    # load) before its answer starts.
    stamp_wait_s = download_wait_seconds(lines, str(row.connective_package_id))
    # Likewise the sandbox's own work on the received document (its PDF check and hash) before it answers.
    handled = bench.stats()["upload_handling_s_by_package"]
    upload_handling_s = float(handled.get(str(row.connective_package_id).lower(), 0.0))
    pipeline_s = sum(call.seconds for call in calls) - stamp_wait_s - upload_handling_s
    bare_s = bare_copy_seconds(blobs, names.INBOX_CONTAINER, name, folder)
    archived = next(f for f in row.archived_files if f["kind"] == "signed-document")
    figures: dict[str, object] = {
        "large_doc.document_mb": round(size / 1e6, 1),
        "large_doc.archived_mb": round(int(archived["size"]) / 1e6, 1),
        "large_doc.peak_rss_growth_mb": round((sampler.peak_own - baseline_own) / 1e6, 1),
        "large_doc.peak_rss_ratio": round((sampler.peak_own - baseline_own) / size, 3),
        "large_doc.with_children_peak_rss_ratio": round((sampler.peak_with_children - baseline_total) / size, 3),
        **phase_figures(calls, sampler.samples, baseline_own),
        "large_doc.stamp_wait_s": round(stamp_wait_s, 2),
        "large_doc.upload_handling_s": round(upload_handling_s, 2),
        "large_doc.pipeline_s": round(pipeline_s, 2),
        "large_doc.bare_copy_s": round(bare_s, 2),
        "large_doc.pipeline_mb_s": round(2 * size / 1e6 / pipeline_s, 1),
        "large_doc.bare_copy_mb_s": round(2 * size / 1e6 / bare_s, 1),
        "large_doc.throughput_ratio": round(bare_s / pipeline_s, 3),
    }
    print(f"  {name}: pipeline {pipeline_s:.2f} s (intake {figures['large_doc.intake_s']}, create "
          f"{figures['large_doc.create_s']} of which {upload_handling_s:.2f} the sandbox's upload handling, "
          f"archive {figures['large_doc.archive_s']} of which {stamp_wait_s:.2f} "
          f"waiting for the sandbox's stamp), bare copy {bare_s:.2f} s, "
          f"ratio {figures['large_doc.throughput_ratio']} (load average {load_average()})", flush=True)
    return figures


@dataclass(frozen=True)
class Invocation:
    function: str
    started: float  # epoch seconds
    seconds: float


def invocations(lines: list[str], functions: tuple[str, ...]) -> list[Invocation]:
    """The host's invocations of these functions, from its `host.invocation` log lines (logged at the end)."""
    found = []
    for line in lines:
        if '"host.invocation"' in line:
            entry = json.loads(line)
            if entry.get("function") in functions:
                seconds = float(entry["duration_ms"]) / 1000
                ended = datetime.fromisoformat(entry["ts"]).timestamp()
                found.append(Invocation(entry["function"], ended - seconds, seconds))
    return found


def download_wait_seconds(lines: list[str], package_id: str) -> float:
    """Seconds the archive's Download Document calls of this package waited for their answer to start.

    A streamed download's `connective.call` line is written when the answer's headers arrive, so its
    `duration_ms` is the wait for the sandbox to have the signed file, plus a loopback round trip.
    """
    waited = 0.0
    for line in lines:
        if '"connective.call"' in line and "download_document_from_package" in line:
            entry = json.loads(line)
            if entry.get("operation") == "download_document_from_package" and entry.get("package_id") == package_id:
                waited += float(entry.get("duration_ms") or 0.0) / 1000
    return waited


def phase_figures(calls: list[Invocation], samples: list[tuple[float, int]], baseline: int) -> dict[str, object]:
    """Seconds and the worker's peak RSS growth during each function's invocations."""
    figures: dict[str, object] = {}
    for function in PIPELINE_FUNCTIONS:
        mine = [call for call in calls if call.function == function]
        during = [rss for at, rss in samples
                  if any(call.started <= at <= call.started + call.seconds for call in mine)]
        short = function.split("_")[0]
        figures[f"large_doc.{short}_s"] = round(sum(call.seconds for call in mine), 2)
        figures[f"large_doc.{short}_peak_growth_mb"] = round((max(during, default=baseline) - baseline) / 1e6, 1)
    return figures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.large_doc", description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=1, help="large documents in a row; speeds are their medians")
    parser.add_argument("--cpu-hog", type=int, default=0, help="busy processes beside the world")
    args = parser.parse_args(argv)
    results = run(args.repeat, args.cpu_hog)
    for key, value in results.items():
        print(f"{key} = {value}")
    print(f"peak_rss_ratio {results['large_doc.peak_rss_ratio']} (goal <= 1.5), "
          f"throughput_ratio {results['large_doc.throughput_ratio']} (goal >= 0.8)")


if __name__ == "__main__":
    main()
