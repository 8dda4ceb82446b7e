"""The short chaos run (bench.chaos with 50 inputs): faults, callback chaos, a killed worker, an Azurite restart.

Whatever happens, every input must reach its designed final state (Archived, or Rejected by the
sandbox's signer) within the time limit: exactly one Connective package per input and none that
nobody asked for, no archive file beyond the row's list, every archive complete, no input blob
lost, every row present. A creation whose worker was killed resumes once its short lease lapses
(CREATION_LEASE_S); a creation whose message went to poison after faults on each try is sent again
by the maintenance timer (STUCK_CREATION_AFTER_MIN); a package whose callbacks were all dropped is
found by the timer's reconciliation (docs/HARDENING.md).
"""

from __future__ import annotations

import pytest

from bench._audit import ZERO_GOALS
from bench.chaos import ChaosPlan, print_run, run_once

pytestmark = pytest.mark.slow

# About 105 s on an idle 2-core machine; the bound leaves room for a slower CI machine while still
# failing a run that stalls (a lease or a lost message would hold inputs for minutes).
SHORT_RUN = ChaosPlan(inputs=50, workers=3, seed=7, timeout_s=240)


@pytest.mark.timeout(420)
def test_fifty_inputs_end_archived_or_rejected_once_each_and_nothing_is_lost() -> None:
    result = run_once(SHORT_RUN)
    print_run(result)
    counts = result["counts"]

    assert counts["inputs"] == 50 and counts["manifests"] > 0 and counts["designed_to_reject"] > 0
    assert [event["event"] for event in result["events"]] == ["worker_killed", "azurite_restarted"]
    assert counts["faults_5xx"] > 0 and counts["callbacks_duplicated"] > 0 and counts["callbacks_dropped"] > 0
    assert result["maintenance_timer"]
    assert {name: counts[name] for name in ZERO_GOALS if counts[name]} == {}, result["problems"]
    assert counts["timed_out"] == 0
    assert counts["status_Archived"] + counts.get("status_Rejected", 0) == 50
    assert result["goals_met"]
