"""The short chaos run (bench.chaos with 50 inputs): faults, callback chaos, a killed worker, an Azurite restart.

What must hold whatever happens: no input blob lost, every row present, never two Connective
packages for one input nor one nobody asked for, no archive file beyond the row's list, every
archive complete. Every input must also reach its designed final state, except for the two
waits the pipeline documents: a creation whose worker was killed keeps its lease
(CreationLeaseUntil, 11 minutes) and has not been retried yet; and, while no maintenance timer is
registered, a package whose final callbacks were all dropped stays Pending although Connective has
finished it. Both are listed by the run (docs/HARDENING.md).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from bench.chaos import ChaosPlan, print_run, run_once

pytestmark = pytest.mark.slow

SHORT_RUN = ChaosPlan(inputs=50, workers=3, seed=7, timeout_s=120)
CONNECTIVE_FINAL = {"Finished", "Rejected", "Revoked", "Failed"}


def _documented_wait(problem: dict[str, Any], maintenance_timer: bool) -> bool:
    lease = problem.get("creation_lease_until")
    if problem.get("status") in {"Received", "Creating"} and lease is not None:
        return datetime.fromisoformat(str(lease)).astimezone(UTC) > datetime.now(UTC)
    connective = problem.get("connective") or {}
    return (not maintenance_timer and problem.get("status") == "Pending"
            and connective.get("status") in CONNECTIVE_FINAL)


@pytest.mark.timeout(300)
def test_fifty_inputs_end_archived_or_rejected_once_each_and_nothing_is_lost() -> None:
    result = run_once(SHORT_RUN)
    print_run(result)
    counts = result["counts"]

    assert counts["inputs"] == 50 and counts["manifests"] > 0 and counts["designed_to_reject"] > 0
    assert [event["event"] for event in result["events"]] == ["worker_killed", "azurite_restarted"]
    assert counts["faults_5xx"] > 0 and counts["callbacks_duplicated"] > 0 and counts["callbacks_dropped"] > 0
    assert counts["rows_missing"] == 0
    assert counts["input_blobs_lost"] == 0
    assert counts["inputs_with_several_packages"] == 0
    assert counts["unknown_packages"] == 0
    assert counts["duplicate_archive_files"] == 0
    assert counts["archives_incomplete"] == 0
    unexplained = [problem for problem in result["problems"]
                   if not _documented_wait(problem, result["maintenance_timer"])]
    assert unexplained == []
