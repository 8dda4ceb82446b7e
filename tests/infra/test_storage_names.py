"""Every container, table and queue the code uses is created by the Bicep or documented."""

from __future__ import annotations

from devtools import infra_model
from shared.storage import names

STORAGE_MODULE = infra_model.INFRA / "modules" / "storage-account.bicep"
DEPLOY_DOC = infra_model.ROOT / "docs" / "DEPLOY.md"
# Made by the Functions host in AzureWebJobsStorage, not by the Bicep.
HOST_MADE = ("azure-webjobs-hosts", "azure-webjobs-secrets", "webjobs-blobtrigger-poison")


def test_main_lists_exactly_the_names_the_code_uses() -> None:
    variables = infra_model.variables(infra_model.MAIN)
    assert sorted(variables["documentContainers"]) == sorted(names.CONTAINERS)
    assert sorted(variables["documentTables"]) == sorted(names.TABLES)
    assert sorted(variables["documentQueues"]) == sorted(names.QUEUES)


def _looped_array(resource_type: str) -> str:
    """The module parameter a resource loops over, each item naming one instance."""
    for resource in infra_model.parse(STORAGE_MODULE)["resources"].values():
        if resource["type"] == resource_type:
            loop = resource["config"]["loop_type"]["detail"]
            assert resource["config"]["config"]["name"] == loop["item_name"]
            return str(loop["array_name"])
    raise AssertionError(f"{resource_type} is not created in {STORAGE_MODULE.name}")


def test_storage_module_creates_each_kind() -> None:
    prefix = "Microsoft.Storage/storageAccounts/"
    assert _looped_array(prefix + "blobServices/containers") == "containers"
    assert _looped_array(prefix + "tableServices/tables") == "tables"
    assert _looped_array(prefix + "queueServices/queues") == "queues"


def test_document_names_reach_the_document_account() -> None:
    modules = infra_model.parse(infra_model.MAIN)["modules"]
    for module_name in ("hostStorage", "documentStorage"):
        config = modules[module_name]["config"]
        params = str(config.get("params") or config["config"]["params"])  # conditional modules nest once more
        for variable in ("documentContainers", "documentTables", "documentQueues"):
            assert variable in params, f"{module_name} does not receive {variable}"


def test_host_made_and_poison_queues_are_documented() -> None:
    doc = DEPLOY_DOC.read_text()
    for name in (*names.POISON_QUEUES, *HOST_MADE):
        assert f"`{name}`" in doc, f"docs/DEPLOY.md does not mention `{name}`"
