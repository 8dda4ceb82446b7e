"""local.settings.json.example holds what `make run` and `func start` need, and nothing unknown."""

from __future__ import annotations

import json

from devtools.azurite import PROJECT_ROOT
from devtools.host.keys import FUNCTION_KEYS_SETTING, MASTER_KEY_SETTING
from shared.config import SETTINGS

FUNCTIONS_RUNTIME_SETTINGS = {"FUNCTIONS_WORKER_RUNTIME", "AzureWebJobsFeatureFlags"}
HOST_SETTINGS = {FUNCTION_KEYS_SETTING, MASTER_KEY_SETTING}


def _values() -> dict[str, str]:
    document = json.loads((PROJECT_ROOT / "local.settings.json.example").read_text())
    return document["Values"]


def test_every_required_setting_is_there() -> None:
    values = _values()
    required = {s.name for s in SETTINGS if s.default is None}
    assert required <= set(values), f"missing: {sorted(required - set(values))}"
    assert values["FUNCTIONS_WORKER_RUNTIME"] == "python"
    assert values["AzureWebJobsFeatureFlags"] == "EnableWorkerIndexing"


def test_no_unknown_setting_and_dev_only_secrets() -> None:
    values = _values()
    known = {s.name for s in SETTINGS} | FUNCTIONS_RUNTIME_SETTINGS | HOST_SETTINGS
    assert set(values) <= known, f"unknown: {sorted(set(values) - known)}"
    secret_names = {s.name for s in SETTINGS if s.secret} | HOST_SETTINGS
    assert all(values[name].startswith("dev-only") for name in secret_names & set(values))
