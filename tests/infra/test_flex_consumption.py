"""The Bicep holds to what Flex Consumption accepts, as far as that can be read offline.

Sources: the "Flex Consumption plan deprecations" table of Microsoft Learn's "App settings reference
for Azure Functions" (functions-app-settings#flex-consumption-plan-deprecations), and Microsoft's
Flex Consumption azd templates (Azure-Samples). What only Azure can settle is listed in
docs/DEPLOY.md, "What is checked here, and what is not".
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from devtools import infra_model

# The deprecations table: site properties and app settings a Flex Consumption app must not carry.
# Azure rejects some of them outright (siteConfig.ftpsState: ARM error 51021) and ignores others.
DEPRECATED_SITE_PROPERTIES = (
    "alwaysOn", "containerSize", "ftpsState", "isReserved", "IsXenon", "javaVersion", "LinuxFxVersion",
    "netFrameworkVersion", "powerShellVersion", "functionAppScaleLimit", "preWarmedInstanceCount",
    "use32BitWorkerProcess", "vnetBackupRestoreEnabled", "vnetContentShareEnabled", "vnetImagePullEnabled",
    "vnetRouteAllEnabled", "windowsFxVersion",
)
DEPRECATED_APP_SETTINGS = (
    "ENABLE_ORYX_BUILD", "FUNCTIONS_EXTENSION_VERSION", "FUNCTIONS_WORKER_RUNTIME", "FUNCTIONS_WORKER_RUNTIME_VERSION",
    "FUNCTIONS_MAX_HTTP_CONCURRENCY", "FUNCTIONS_WORKER_PROCESS_COUNT", "FUNCTIONS_WORKER_DYNAMIC_CONCURRENCY_ENABLED",
    "SCM_DO_BUILD_DURING_DEPLOYMENT", "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING", "WEBSITE_CONTENTOVERVNET",
    "WEBSITE_CONTENTSHARE", "WEBSITE_DNS_SERVER", "WEBSITE_MAX_DYNAMIC_APPLICATION_SCALE_OUT",
    "WEBSITE_NODE_DEFAULT_VERSION", "WEBSITE_RUN_FROM_PACKAGE", "WEBSITE_SKIP_CONTENTSHARE_VALIDATION",
    "WEBSITE_VNET_ROUTE_ALL",
)
_PROPERTY_KEY = re.compile(r"^\s*'?([A-Za-z_][\w]*)'?\s*:", flags=re.M)


def _property_keys(text: str) -> set[str]:
    """Every object key written in a Bicep text, lower-cased (Azure treats property names case-insensitively)."""
    return {key.lower() for key in _PROPERTY_KEY.findall(text)}


@pytest.mark.parametrize("path", infra_model.bicep_files(), ids=lambda p: p.relative_to(infra_model.INFRA).as_posix())
def test_no_deprecated_flex_property_or_setting(path: Path) -> None:
    keys = _property_keys(path.read_text(encoding="utf-8"))
    found = sorted(name for name in (*DEPRECATED_SITE_PROPERTIES, *DEPRECATED_APP_SETTINGS) if name.lower() in keys)
    assert not found, f"{path.name} sets what Flex Consumption deprecates or rejects: {found}"


def test_detector_finds_a_deprecated_property() -> None:
    sample = "siteConfig: {\n  minTlsVersion: '1.2'\n  ftpsState: 'Disabled'\n}\nWEBSITE_RUN_FROM_PACKAGE: '1'\n"
    keys = _property_keys(sample)
    assert "ftpsstate" in keys and "website_run_from_package" in keys


def test_ftp_stays_off_through_the_publishing_credential_policies() -> None:
    resources = infra_model.parse(infra_model.FUNCTION_APP)["resources"].values()
    policies = {r["config"]["name"]: r["config"]["properties"]["allow"] for r in resources
                if r["type"] == "Microsoft.Web/sites/basicPublishingCredentialsPolicies"}
    assert policies == {"ftp": False, "scm": False}


def _main_parameter(name: str) -> dict[str, object]:
    parameter: dict[str, object] = infra_model.parse(infra_model.MAIN)["parameters"][name]
    return parameter


def _allowed(name: str) -> list[object]:
    decorators = _main_parameter(name)["decorators"]
    for decorator in decorators:  # type: ignore[attr-defined]
        if decorator["type"] == "allowed":
            return list(decorator["argument"])
    raise AssertionError(f"parameter {name} has no @allowed list")


def test_instance_memory_offers_only_sizes_sites_2024_04_01_accepts() -> None:
    # An azure-rest-api-specs report: sites@2024-04-01 refuses instanceMemoryMB 512 on Flex Consumption.
    assert sorted(int(v) for v in _allowed("instanceMemoryMB")) == [2048, 4096]  # type: ignore[call-overload]
    assert _main_parameter("instanceMemoryMB")["default"] == 2048
    assert "${INSTANCE_MEMORY_MB=2048}" in (infra_model.INFRA / "main.parameters.json").read_text()


def test_python_versions_include_the_newest_flex_runtime_and_default_to_the_tested_one() -> None:
    # requirements.txt pins azure-functions 2.x, which needs Python 3.13+; 3.14 is GA on Flex Consumption.
    assert [str(v) for v in _allowed("pythonVersion")] == ["3.13", "3.14"]
    assert "${PYTHON_VERSION=3.13}" in (infra_model.INFRA / "main.parameters.json").read_text()


def test_the_deployer_may_write_blobs_of_the_document_account() -> None:
    storage = infra_model.INFRA / "modules" / "storage-account.bicep"
    resources = infra_model.parse(storage)["resources"]
    role = resources["deployerBlobRole"]["config"]
    # Skipped when azd runs without a signed-in principal.
    assert role["condition"]["operator"] == {"type": "not", "operands": {"bool_value": {
        "function": {"type": "empty", "parameters": {"item_to_test": "deployerPrincipalId"}}}}}
    properties = role["config"]["properties"]
    assert properties["roleDefinitionId"]["function"]["parameters"]["resource_name_1"] == "blobDataContributor"
    assert properties["principalId"] == "deployerPrincipalId"
    assert infra_model.variables(storage)["blobDataContributor"] == "ba92f5b4-2d11-453d-a403-e96b0029c9fe"
    modules = infra_model.parse(infra_model.MAIN)["modules"]
    host = modules["hostStorage"]["config"]["params"]
    document = modules["documentStorage"]["config"]["config"]["params"]  # a conditional module nests once more
    # Exactly the account that holds the documents gets the deployer's role.
    assert host["deployerPrincipalId"]["operator"]["operands"] == {
        "condition": "separateDocumentStorage", "true_value": "", "false_value": "principalId"}
    assert document["deployerPrincipalId"] == "principalId"
    assert host["deployerPrincipalType"] == document["deployerPrincipalType"] == "principalType"
