"""The signing flows end to end under every variant of what no public source documents.

One LocalWorld (Azurite, the sandbox auto-signing, the host); for each variant the sandbox is reset,
the variant's knobs set, and a one-document PDF (1 signer) and a three-document batch (2 signers in
order) dropped. Both must reach Archived, nothing may be refused, and the Connective calls per
package must stay within the goals of bench/calls_per_package.py: at most 4 and 11, plus one status
read where the variant's callbacks carry no status. docs/CONNECTIVE_CONTRACT.md lists the variants.

`test_one_variant_of_each_behaviour_at_once` runs on every test run; the full matrix is marked `matrix`,
which `make test` leaves out and `make test-matrix` runs.
`CONTRACT_VARIANT_FIGURES=path` writes the calls per package of each variant run there (JSON).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from azure.storage.blob import BlobServiceClient

from bench._inputs import InputSpec, drop
from bench._progress import wait_until_settled
from bench._world import BenchWorld
from shared.storage.clients import StorageClients
from shared.storage.status import PackageStatus
from shared.storage.store import Store
from tests.conftest import wait_until

GOALS = {"single": 4, "multi": 11}
SHAPES = {"single": InputSpec("single", documents=1, signers=1), "multi": InputSpec("multi", documents=3, signers=2)}
LATE_CALLS_S = 1.5  # after the last archive: calls that might still come (a late status refresh)

# behaviour -> variant name -> sandbox knobs. The first variant of each behaviour is the sandbox's default.
VARIANTS: dict[str, dict[str, dict[str, Any]]] = {
    "callback shape": {
        "post-json-query": {"callback_style": "post-json-query"},
        "post-json": {"callback_style": "post-json"},
        "post-form": {"callback_style": "post-form"},
        "get-package-id": {"callback_style": "get-package-id"},
        "no-status": {"callback_style": "no-status"},
    },
    "callback url query": {
        "query-kept": {"callback_drop_query": False},
        "query-dropped": {"callback_drop_query": True},
    },
    "error body": {
        "object-Message": {"error_format": "object", "error_message_key": "Message"},
        "object-ErrorMessage": {"error_format": "object", "error_message_key": "ErrorMessage"},
        "array-ErrorMessage": {"error_format": "array", "error_message_key": "ErrorMessage"},
        "array-Message": {"error_format": "array", "error_message_key": "Message"},
    },
    "audit proof layout": {
        "uploads-per-document": {"audit_proof_uploads": "per-document", "audit_proof_wrapper": False},
        "wrapper": {"audit_proof_wrapper": True},
        "upload-per-session": {"audit_proof_uploads": "per-session"},
        "wrapper-and-per-session": {"audit_proof_uploads": "per-session", "audit_proof_wrapper": True},
    },
    "package list": {
        "sortfield-known-status-any-case": {"list_sort_field": "known", "list_status_case": "any"},
        "sortfield-refused": {"list_sort_field": "refuse"},
        "sortfield-ignored": {"list_sort_field": "ignore"},
        "status-exact-case": {"list_status_case": "exact"},
        "status-upper-case": {"list_status_case": "upper"},
    },
    "delete draft": {
        "draft-deletable": {"delete_draft_conflict": False},
        "draft-409": {"delete_draft_conflict": True},
    },
}
# One non-default variant of every behaviour, in one run.
EACH_BEHAVIOUR_AT_ONCE = {"callback_style": "no-status", "callback_drop_query": True, "error_format": "array",
                          "error_message_key": "Message", "audit_proof_uploads": "per-session",
                          "audit_proof_wrapper": True, "list_sort_field": "refuse", "list_status_case": "upper",
                          "delete_draft_conflict": True}
NO_STATUS_STYLES = {"get-package-id", "no-status"}


@pytest.fixture(scope="module")
def bench() -> Iterator[BenchWorld]:
    with BenchWorld(workers=1) as running:
        yield running


def _record(variant: str, calls: dict[str, int]) -> None:
    target = os.environ.get("CONTRACT_VARIANT_FIGURES")
    if not target:
        return
    path = Path(target)
    figures = json.loads(path.read_text()) if path.exists() else {}
    figures[variant] = calls
    path.write_text(json.dumps(figures, indent=2, sort_keys=True))


def run_flows(bench: BenchWorld, variant: str, knobs: dict[str, Any]) -> dict[str, int]:
    """Reset the sandbox, set the knobs, drop one input of each shape; calls per package by shape."""
    requests.post(f"{bench.admin_url}/reset", timeout=30).raise_for_status()
    bench.configure(**knobs)
    blobs = BlobServiceClient.from_connection_string(bench.connection_string)
    stamp = f"{variant}-{time.monotonic_ns()}"
    dropped = {shape: drop(blobs, InputSpec(f"{shape}-{stamp}", spec.documents, spec.signers))
               for shape, spec in SHAPES.items()}
    rows = wait_until_settled(Store(StorageClients(bench.connection_string)), list(dropped.values()), timeout_s=120,
                              report_every_s=60)
    time.sleep(LATE_CALLS_S)
    by_reference = bench.stats()["calls_by_external_reference"]
    outcome = {shape: (rows[item.ref].status if item.ref in rows else None, rows[item.ref].last_error
                       if item.ref in rows else None) for shape, item in dropped.items()}
    assert all(status is PackageStatus.ARCHIVED for status, _ in outcome.values()), outcome
    for shape, item in dropped.items():
        row = rows[item.ref]
        proofs = [f for f in row.archived_files if f["kind"] == "document-audit-proof"]
        assert len(proofs) == SHAPES[shape].documents, row.archived_files
    calls = {shape: int(by_reference.get(item.ref, 0)) for shape, item in dropped.items()}
    _record(variant, calls)
    # Both packages' calls by operation, so that a package over its goal says which calls were extra, and
    # the answers' status codes: with these knobs the sandbox answers no 409, 429 or 5xx, so no call over
    # the goal can be a legitimate retry (a 409 "not ready" archive retry would show here).
    stats = bench.stats()
    calls["by_operation"] = stats["calls_by_operation"]  # type: ignore[assignment]
    calls["status_codes"] = stats["status_codes"]  # type: ignore[assignment]
    return calls


def within_goals(calls: dict[str, int], knobs: dict[str, Any]) -> bool:
    extra = 1 if knobs.get("callback_style") in NO_STATUS_STYLES else 0  # at most one more status read
    return all(calls[shape] <= GOALS[shape] + extra for shape in GOALS)


def test_one_variant_of_each_behaviour_at_once(bench: BenchWorld) -> None:
    calls = run_flows(bench, "each-behaviour-at-once", EACH_BEHAVIOUR_AT_ONCE)
    assert within_goals(calls, EACH_BEHAVIOUR_AT_ONCE), calls


@pytest.mark.slow
@pytest.mark.matrix
@pytest.mark.parametrize(("behaviour", "variant"), [(b, v) for b, variants in VARIANTS.items() for v in variants])
def test_every_variant(bench: BenchWorld, behaviour: str, variant: str) -> None:
    knobs = VARIANTS[behaviour][variant]
    calls = run_flows(bench, variant, knobs)
    assert within_goals(calls, knobs), calls


@pytest.mark.parametrize("style", ["post-json", "post-form", "get-query", "bare"])
def test_a_new_link_request_reaches_the_signer_whatever_its_shape(bench: BenchWorld, style: str) -> None:
    """Through the host: the new-link route finds the actor (or, with nothing to go on, whose turn it is)."""
    requests.post(f"{bench.admin_url}/reset", timeout=30).raise_for_status()
    bench.configure(auto_sign=False, notification_style=style)
    blobs = BlobServiceClient.from_connection_string(bench.connection_string)
    dropped = drop(blobs, InputSpec(f"link-{style}-{time.monotonic_ns()}", documents=1, signers=1))
    store = Store(StorageClients(bench.connection_string))

    def pending() -> Any:
        row = store.packages.get(dropped.ref)
        return row if row is not None and row.status is PackageStatus.PENDING else None

    row = wait_until(pending, timeout_s=60)
    actor_id = row.signers[0]["actor_id"]
    requests.post(f"{bench.admin_url}/packages/{row.connective_package_id}/actors/{actor_id}/request-link",
                  json={}, timeout=30).raise_for_status()
    published = wait_until(lambda: [e for e in store.events.history(dropped.ref) if e["kind"] == "link_published"],
                           timeout_s=60)
    assert [event["actor_id"] for event in published] == [actor_id]
