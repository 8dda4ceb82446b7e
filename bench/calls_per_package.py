"""Connective calls per package, from drop to archive, against the usual polling flow.

    .venv/bin/python -m bench.calls_per_package [--samples 3]

A fresh LocalWorld (Azurite, the sandbox auto-signing after 1 s, the host with one worker) gets
`--samples` inputs of each shape, all at once:

- `single`: one PDF in signing-inbox/ with one signer (goal at most 4 calls);
- `multi`: a batch of 3 documents with 2 signers in order (goal at most 11 calls).

Each input is followed to Archived; a few seconds later the sandbox's `/_sandbox/stats` gives the
calls per ExternalPackageReference (our packageRef), creates included. The figure is the largest
count over the samples, so one unlucky package is not averaged away.

`calls_per_package.polling_baseline` (and `_multi`) is what the same packages cost when followed
the usual way instead: one Get Package Status a minute until the package is final, then downloads.
It is computed, not run, from signing times drawn uniformly between 10 and 60 minutes with a fixed
seed (see bench/README.md for the arithmetic):

    creation calls + ceil(signing minutes) status polls + 2 downloads per document
"""

from __future__ import annotations

import argparse
import math
import random
import time
from typing import Any

from azure.storage.blob import BlobServiceClient

from bench._inputs import InputSpec, drop
from bench._progress import wait_until_settled
from bench._world import BenchWorld
from shared.storage.clients import StorageClients
from shared.storage.store import Store

SHAPES = {"single": InputSpec("single", documents=1, signers=1), "multi": InputSpec("multi", documents=3, signers=2)}
GOALS = {"single": 4, "multi": 11}
# The polling flow: a status read every minute; signing takes 10 to 60 minutes.
POLL_EVERY_MIN = 1.0
SIGNING_MINUTES = (10.0, 60.0)
BASELINE_DRAWS = 10_000
BASELINE_SEED = 20240601
# Calls that are not status reads: creation, and downloads (each signed document and its audit proof).
CREATION_CALLS = {"single": 1, "multi": 3 + 3}  # Create Instant | Create + 3 Add Document + Set Process + Set Status
DOWNLOAD_CALLS = {"single": 2 * 1, "multi": 2 * 3}
# After the last row settles, wait this long for calls that might still come (status refreshes).
LATE_CALLS_S = 5.0


def polling_baseline(shape: str, draws: int = BASELINE_DRAWS, seed: int = BASELINE_SEED) -> float:
    """Mean calls of the polling flow for one package of this shape."""
    rng = random.Random(seed)
    polls = sum(math.ceil(rng.uniform(*SIGNING_MINUTES) / POLL_EVERY_MIN) for _ in range(draws)) / draws
    return CREATION_CALLS[shape] + polls + DOWNLOAD_CALLS[shape]


def measure(samples: int) -> tuple[dict[str, list[int]], dict[str, Any]]:
    """Calls per package for each shape, and the sandbox's calls by operation."""
    with BenchWorld(workers=1) as bench:
        blobs = BlobServiceClient.from_connection_string(bench.connection_string)
        dropped = {shape: [drop(blobs, InputSpec(f"{spec.name}-{n}", spec.documents, spec.signers))
                           for n in range(samples)] for shape, spec in SHAPES.items()}
        every = [item for items in dropped.values() for item in items]
        print(f"dropped {len(every)} inputs; waiting for their archives", flush=True)
        rows = wait_until_settled(Store(StorageClients(bench.connection_string)), every, timeout_s=180)
        time.sleep(LATE_CALLS_S)
        stats = bench.stats()
        by_reference = stats["calls_by_external_reference"]
        unsettled = [(i.ref, rows[i.ref].status.value if i.ref in rows else "missing")
                     for i in every if i.ref not in rows or rows[i.ref].status.value != "Archived"]
        if unsettled:
            raise RuntimeError(f"inputs did not reach Archived: {unsettled}")
        calls = {shape: [int(by_reference.get(i.ref, 0)) for i in items] for shape, items in dropped.items()}
        return calls, dict(stats["calls_by_operation"])


def run(samples: int = 3) -> dict[str, object]:
    calls, by_operation = measure(samples)
    print(f"calls by operation: {by_operation}")
    results: dict[str, object] = {}
    for shape, counts in calls.items():
        print(f"{shape}: calls per package {counts}")
        results[f"calls_per_package.{shape}"] = max(counts)
    results["calls_per_package.polling_baseline"] = round(polling_baseline("single"), 1)
    results["calls_per_package.polling_baseline_multi"] = round(polling_baseline("multi"), 1)
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.calls_per_package", description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=3, help="packages of each shape")
    args = parser.parse_args(argv)
    results = run(args.samples)
    for key, value in results.items():
        print(f"{key} = {value}")
    for shape, goal in GOALS.items():
        value = results[f"calls_per_package.{shape}"]
        assert isinstance(value, int)
        print(f"{shape}: {value} calls (goal <= {goal}: {'met' if value <= goal else 'MISSED'}); polling flow "
              f"{results['calls_per_package.polling_baseline' + ('' if shape == 'single' else '_multi')]}")


if __name__ == "__main__":
    main()
