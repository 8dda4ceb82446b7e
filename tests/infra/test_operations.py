"""The workbook and alert rules read metrics the code really emits, and every alert is documented."""

from __future__ import annotations

import json
import re

import shared.telemetry as telemetry
from devtools import infra_model
from shared.connective import recording

OPERATIONS = infra_model.INFRA / "modules" / "operations.bicep"
WORKBOOK = infra_model.INFRA / "modules" / "operations-workbook.json"
DOC = (infra_model.ROOT / "docs" / "OPERATIONS.md").read_text()


def _instrument_names() -> set[str]:
    candidates = [*vars(telemetry).values(), *vars(recording).values(), *telemetry._client_events.values()]
    return {value._name for value in candidates
            if hasattr(value, "_name") and (hasattr(value, "add") or hasattr(value, "record"))}


def _metric_names(text: str) -> set[str]:
    return set(re.findall(r"name (?:==|in) \(?[\"']([a-z_.]+)[\"']", text)) | set(
        re.findall(r"'([a-z_]+\.[a-z_.]+)'", text))


def test_the_workbook_queries_only_emitted_metrics() -> None:
    workbook = json.loads(WORKBOOK.read_text())
    queries = [item["content"]["query"] for item in workbook["items"] if item["type"] == 3]
    assert len(queries) >= 6
    used = set().union(*(_metric_names(q) for q in queries)) - {"package.archive", "package.ref"}
    emitted = _instrument_names()
    assert {"connective.calls", "package.transitions", "intake.rejections"} <= emitted
    assert used <= emitted, used - emitted


def test_alert_rules_read_emitted_metrics_and_are_documented() -> None:
    text = OPERATIONS.read_text()
    used = set(re.findall(r'name == "([a-z_.]+)"', text))
    assert used and used <= _instrument_names(), used - _instrument_names()
    titles = re.findall(r"title: '([^']+)'", text)
    assert len(titles) == 5
    for anchor in ("Poison queue messages", "New error reports in signing-errors", "Connective answered 429",
                   "Burst of callback authentication failures", "Rate budget near its limit"):
        assert f"**{anchor}" in DOC, anchor


def test_alerts_take_an_action_group_parameter() -> None:
    assert "actionGroupId" in infra_model.parameters(OPERATIONS)
    main = infra_model.parse(infra_model.MAIN)
    assert "alertActionGroupId" in main["parameters"]
