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


def test_first_deploy_section_covers_each_step_its_time_and_recovery() -> None:
    section = DEPLOY.split("## First deploy", 1)[1].split("\n## ", 1)[0]
    for step in ("1. provision", "2. post-provision hook", "3. deploy", "4. post-deploy hook"):
        assert re.search(rf"^\| {re.escape(step)} \|[^|]+\| [^|]*\d[^|]* \|$", section, flags=re.M), step
    assert "### When a step fails halfway" in section
    for rerun in ("azd provision", "azd hooks run postprovision", "azd deploy", "azd hooks run postdeploy"):
        assert f"`{rerun}`" in section, rerun


def test_docs_say_what_was_verified_and_what_only_azure_settles() -> None:
    assert "**Verified by reading the sources, not by Azure.**" in DEPLOY
    assert "**Only a real `azd provision --preview` (or a first deployment) can settle**" in DEPLOY
    for source in ("functions-quickstart-python-http-azd", "functions-quickstart-python-azd-eventgrid-blob",
                   "azure-functions-flex-consumption-samples", "Azure/bicep-types-az"):
        assert source in DEPLOY, source


def test_removing_a_deployment_explains_soft_deleted_key_vaults() -> None:
    section = DEPLOY.split("## Removing a deployment", 1)[1]
    assert "`azd down --purge`" in section and "KEY_VAULT_PURGE_PROTECTION=false" in section
    assert "az keyvault recover" in section


def test_first_deploy_lists_every_event_grid_subscription() -> None:
    script = (infra_model.ROOT / "scripts" / "post-deploy.sh").read_text()
    for name, function in re.findall(r"^subscribe (\S+) (\S+) ", script, flags=re.M):
        assert re.search(rf"^ +\| `{name}` \|.*\| `{function}` \|$", DEPLOY, flags=re.M), (
            f"docs/DEPLOY.md, 'First deploy' step 4: add the row of subscription {name}")
