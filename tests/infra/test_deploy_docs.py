"""The deployment docs stay in step with the checks, the settings registry and the hook scripts."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
import yaml  # type: ignore[import-untyped]

from devtools import config_doc, infra_model

DEPLOY = (infra_model.ROOT / "docs" / "DEPLOY.md").read_text()


def test_configuration_doc_is_current() -> None:
    assert config_doc.main(["--check"]) == 0, "run: python -m devtools.config_doc"


def test_configuration_doc_lists_every_setting() -> None:
    from shared.config import SETTINGS
    text = config_doc.render()
    assert "**not set**" not in text
    for setting in SETTINGS:
        assert f"| `{setting.name}` |" in text


def test_every_skipped_policy_check_is_explained() -> None:
    skipped = yaml.safe_load((infra_model.INFRA / "checkov.yaml").read_text())["skip-check"]
    documented = dict(re.findall(r"^\| (CKV_[A-Z]+_\d+) \|[^|]+\| ([^|]+) \|$", DEPLOY, flags=re.M))
    assert sorted(skipped) == sorted(documented), "docs/DEPLOY.md 'Policy checks skipped' and infra/checkov.yaml differ"
    assert all(reason.strip() for reason in documented.values())


def test_docs_say_the_bicep_is_not_compiled() -> None:
    assert "**Not done here: the Bicep is not compiled.**" in DEPLOY
    assert "no `bicep build`" in DEPLOY


def test_cost_estimates_cover_three_volumes() -> None:
    for volume in ("1,000 packages", "10,000 packages", "100,000 packages"):
        assert f"**{volume}" in DEPLOY


@pytest.mark.parametrize("hook", ["postprovision", "postdeploy"])
def test_azd_hooks_exist_and_parse(hook: str) -> None:
    config = yaml.safe_load((infra_model.ROOT / "azure.yaml").read_text())
    assert config["services"]["api"]["host"] == "function"
    script = infra_model.ROOT / config["hooks"][hook]["run"]
    assert script.is_file()
    shell = shutil.which("dash") or shutil.which("sh")
    assert shell
    result = subprocess.run([shell, "-n", str(script)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def _scale_groups() -> dict[str, str]:
    """Flex Consumption's per-function scale groups (all HTTP triggers, all blob triggers, each other
    function on its own), each with its trigger type."""
    groups = {}
    for function in infra_model.registered_functions():
        trigger = function.get_trigger().get_binding_name()
        groups[{"httpTrigger": "http", "blobTrigger": "blob"}.get(trigger, function.get_function_name())] = trigger
    return groups


def test_scaling_section_counts_the_scale_groups() -> None:
    groups = _scale_groups()
    assert {"http", "blob"} <= set(groups)
    assert f"**{len(groups)} scale groups**" in DEPLOY, (
        f"function_app.py has {len(groups)} scale groups ({sorted(groups)}): update docs/DEPLOY.md, 'Scaling'")
    timers = sum(trigger == "timerTrigger" for trigger in groups.values())  # a timer runs on one instance
    assert f"**{(len(groups) - timers) * 40 + timers} instances**" in DEPLOY
