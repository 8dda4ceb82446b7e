"""What a finished end-to-end run left behind, checked against its goals.

For every dropped input: its row is present and in the expected final state; exactly one Connective
package carries its packageRef; its archive folder holds exactly the files its row lists (no second
copy, no stray folder); and every blob of the input is still where it was dropped.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import requests
from azure.core.exceptions import AzureError
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueServiceClient

from bench._inputs import DroppedInput
from bench._world import BenchWorld
from shared.storage import names
from shared.storage.clients import StorageClients
from shared.storage.packages import PackageRecord
from shared.storage.status import PackageStatus
from shared.storage.store import Store

# Counts that must be zero for a run to meet its goals.
ZERO_GOALS = ("rows_missing", "wrong_state", "inputs_without_package", "inputs_with_several_packages",
              "unknown_packages", "duplicate_archive_files", "archives_incomplete", "input_blobs_lost")


@dataclass
class Audit:
    counts: dict[str, int] = field(default_factory=dict)
    statuses: dict[str, int] = field(default_factory=dict)
    problems: list[dict[str, Any]] = field(default_factory=list)

    @property
    def goals_met(self) -> bool:
        return all(self.counts.get(name, 0) == 0 for name in ZERO_GOALS)


def _archive_files(blobs: BlobServiceClient) -> dict[str, list[str]]:
    """Blob names under signed-documents/{yyyy}/{mm}/{packageRef}/, by packageRef."""
    by_ref: dict[str, list[str]] = defaultdict(list)
    for blob in blobs.get_container_client(names.SIGNED_CONTAINER).list_blobs():
        parts = blob.name.split("/")
        by_ref[parts[2] if len(parts) > 3 else ""].append(blob.name)
    return by_ref


def _existing_inputs(blobs: BlobServiceClient) -> set[tuple[str, str]]:
    return {(container, blob.name) for container in (names.INBOX_CONTAINER, names.BATCHES_CONTAINER)
            for blob in blobs.get_container_client(container).list_blobs()}


def poison_messages(connection_string: str) -> dict[str, int]:
    """Messages in every `*-poison` queue: work the host gave up on."""
    queues = QueueServiceClient.from_connection_string(connection_string)
    return {queue.name: queues.get_queue_client(queue.name).get_queue_properties().approximate_message_count or 0
            for queue in queues.list_queues() if queue.name.endswith("-poison")}


def connective_state(bench: BenchWorld, package_id: str | None) -> dict[str, Any] | None:
    """The sandbox's internal state of one package (status, actors), for the report of a problem."""
    if not package_id:
        return None
    response = requests.get(f"{bench.admin_url}/packages/{package_id}", timeout=30)
    if response.status_code != 200:
        return {"http_status": response.status_code}
    state = response.json()
    actors = [actor for holder in state.get("stakeholders", []) for actor in holder.get("actors", [])]
    return {"status": state.get("status"), "actors": [actor.get("status") for actor in actors]}


def error_report_reason(store: Store, row: PackageRecord) -> Any:
    """The reason of a rejected input's report in signing-errors/."""
    if not row.error_report:
        return None
    container, _, path = row.error_report.partition("/")
    try:
        return json.loads(store.clients.container(container).download_blob(path).readall()).get("reason")
    except (AzureError, ValueError) as error:
        return f"unreadable report: {error}"


def _describe(bench: BenchWorld, store: Store, item: DroppedInput, row: PackageRecord | None,
              problem: str) -> dict[str, Any]:
    described: dict[str, Any] = {"problem": problem, "input": item.spec.name, "ref": item.ref,
                                 "documents": item.spec.documents, "signers": item.spec.signers,
                                 "expected": item.spec.expected_status.value}
    if row is not None:
        described.update(status=row.status.value, package_id=row.connective_package_id,
                         callbacks=row.callback_count, last_error=row.last_error,
                         final_reason=row.final_reason, error_report=error_report_reason(store, row),
                         creation_lease_until=row.creation_lease_until,
                         connective=connective_state(bench, row.connective_package_id),
                         events=list(store.events.history(item.ref)))
    return described


def audit(bench: BenchWorld, inputs: list[DroppedInput], rows: dict[str, PackageRecord]) -> Audit:
    blobs = BlobServiceClient.from_connection_string(bench.connection_string)
    store = Store(StorageClients(bench.connection_string))
    packages = bench.packages_by_reference()
    archives = _archive_files(blobs)
    existing = _existing_inputs(blobs)
    result = Audit()
    counts: Counter[str] = Counter()
    known = {item.ref for item in inputs}
    for item in inputs:
        row = rows.get(item.ref)
        if row is None:
            counts["rows_missing"] += 1
            result.problems.append(_describe(bench, store, item, None, "row missing"))
        elif row.status is not item.spec.expected_status:
            counts["wrong_state"] += 1
            counts[f"stuck_{row.status.value}"] += 1
            result.problems.append(_describe(bench, store, item, row, "not in its expected state"))
        if packages[item.ref] == 0:
            counts["inputs_without_package"] += 1
            result.problems.append(_describe(bench, store, item, row, "no Connective package"))
        elif packages[item.ref] > 1:
            counts["inputs_with_several_packages"] += 1
            result.problems.append(_describe(bench, store, item, row, f"{packages[item.ref]} Connective packages"))
        listed = {entry["blob"] for entry in (row.archived_files if row else [])}
        stored = set(archives.get(item.ref, []))
        if stored - listed:
            counts["duplicate_archive_files"] += len(stored - listed)
            result.problems.append({**_describe(bench, store, item, row, "archive files not in the row's list"),
                                    "files": sorted(stored - listed)})
        if row is not None and row.status is PackageStatus.ARCHIVED and (not listed or listed - stored):
            counts["archives_incomplete"] += 1
            result.problems.append(_describe(bench, store, item, row, "archived files missing"))
        lost = [name for name in item.blobs if (item.spec.container, name) not in existing]
        counts["input_blobs_lost"] += len(lost)
        if lost:
            result.problems.append({**_describe(bench, store, item, row, "input blobs lost"), "blobs": lost})
    counts["unknown_packages"] = sum(n for ref, n in packages.items() if ref not in known)
    counts["stray_archive_files"] = sum(len(files) for ref, files in archives.items() if ref not in known)
    counts["duplicate_archive_files"] += counts["stray_archive_files"]
    counts["connective_packages"] = sum(packages.values())
    counts["archive_files"] = sum(len(files) for files in archives.values())
    result.counts = {name: counts.get(name, 0) for name in ZERO_GOALS} | dict(counts)
    result.statuses = dict(Counter(rows[i.ref].status.value if i.ref in rows else "missing" for i in inputs))
    return result
