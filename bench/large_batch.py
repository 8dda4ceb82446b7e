"""A batch of three 29 MiB PDFs, just under Connective's 30 MB limit, from signing-batches/ to the archive.

    .venv/bin/python -m bench.large_batch

The archive of a multi-document package downloads one ZIP holding every signed document (about
87 MiB here), spools it to a temporary file and streams each member into its blob. This run checks
that memory still follows one block at a time, not the ZIP: a fresh LocalWorld with one host worker
takes a small batch from drop to archive (warm-up, the baseline RSS), then the large batch, while the
worker's RSS is sampled every 50 ms (bench._memory).

- `large_batch.archive_peak_growth_mb`: the worker's peak RSS growth during the archive's invocations.
- `large_batch.zip_ratio`: the worker's peak RSS growth over the whole run / the size of the package (what
  the archive downloads in one call); the goal of bench.large_doc's ratio (≤ 1.5) applies.
- `large_batch.peak_rss_ratio`: the same growth / the largest document's size.

Measured on the shared 2-core machine (8 sessions running tests): 91.2 MB of documents, 9 calls,
archive 7.3 s, peak growth 86.1 MB, so zip_ratio 0.945 (goal met) and peak_rss_ratio 2.83: the
worker's memory grows with the package, as bench.large_doc's does with its one document (0.88 there),
rather than staying at a few blocks.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from azure.storage.blob import BlobServiceClient

from bench._inputs import DroppedInput, InputSpec, drop
from bench._memory import WorkerMemory
from bench._progress import wait_until_settled
from bench._world import BenchWorld
from bench.client_streaming import write_large_pdf
from bench.large_doc import invocations
from shared.pipeline.inputs import package_ref_for_blob
from shared.pipeline.manifest import MANIFEST_NAME
from shared.storage import names
from shared.storage.clients import StorageClients
from shared.storage.status import PackageStatus
from shared.storage.store import Store

DOCUMENTS = 3
# 8 images of 10240 x 371 bytes: 29.0 MiB per document, under the 30 MB limit.
IMAGES, WIDTH, HEIGHT = 8, 10240, 371


def _drop_batch(blobs: BlobServiceClient, folder: Path) -> tuple[DroppedInput, int, int]:
    container = blobs.get_container_client(names.BATCHES_CONTAINER)
    sizes = []
    for index in range(DOCUMENTS):
        path = folder / f"doc{index}.pdf"
        sizes.append(write_large_pdf(path, images=IMAGES, width=WIDTH, height=HEIGHT))
        with path.open("rb") as source:
            container.get_blob_client(f"large/doc{index}.pdf").upload_blob(source, overwrite=True)
        path.unlink()
    manifest = {"schemaVersion": "1", "name": "Large batch",
                "documents": [{"path": f"doc{index}.pdf"} for index in range(DOCUMENTS)],
                "signers": [{"name": "Large Batch", "email": "large.batch@example.com"}]}
    etag = container.get_blob_client(f"large/{MANIFEST_NAME}").upload_blob(json.dumps(manifest), overwrite=True)["etag"]
    ref = package_ref_for_blob("bat", names.BATCHES_CONTAINER, f"large/{MANIFEST_NAME}", etag)
    dropped = DroppedInput(InputSpec("large", documents=DOCUMENTS), ref, (f"large/{MANIFEST_NAME}",))
    return dropped, max(sizes), sum(sizes)


def run() -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="large-batch-") as folder_name, \
            BenchWorld(workers=1, settings={"CONNECTIVE_READ_TIMEOUT_S": "600"}) as bench:
        blobs = BlobServiceClient.from_connection_string(bench.connection_string)
        store = Store(StorageClients(bench.connection_string))
        warm = drop(blobs, InputSpec("warm-up", documents=2))
        wait_until_settled(store, [warm], timeout_s=120)
        assert bench.world.host is not None
        memory = WorkerMemory(bench.world.host)
        sampler, baseline = memory.sampler, memory.baseline_own
        dropped, largest, total = _drop_batch(blobs, Path(folder_name))
        row = wait_until_settled(store, [dropped], timeout_s=900).get(dropped.ref)
        memory.stop()
        if row is None or row.status is not PackageStatus.ARCHIVED:
            raise RuntimeError(f"the large batch did not reach Archived: {row and row.model_dump()}")
        archive = [call for call in invocations(memory.lines(), ("archive_signed_package",))]
        during_archive = [rss for at, rss in sampler.samples
                          if any(call.started <= at <= call.started + call.seconds for call in archive)]
        calls = bench.stats()["calls_by_external_reference"].get(dropped.ref)
    growth = sampler.peak_own - baseline
    return {
        "large_batch.documents_mb": round(total / 1e6, 1),
        "large_batch.calls": calls,
        "large_batch.archive_s": round(sum(call.seconds for call in archive), 2),
        "large_batch.archive_peak_growth_mb": round((max(during_archive, default=baseline) - baseline) / 1e6, 1),
        "large_batch.peak_rss_growth_mb": round(growth / 1e6, 1),
        "large_batch.peak_rss_ratio": round(growth / largest, 3),
        "large_batch.zip_ratio": round(growth / total, 3),
    }


def main() -> None:
    for key, value in run().items():
        print(f"{key} = {value}")


if __name__ == "__main__":
    main()
