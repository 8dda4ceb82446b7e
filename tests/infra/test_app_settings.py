"""Every setting the code reads is set by the Bicep, under the same name, and no storage key appears."""

from __future__ import annotations

import re

import pytest

from devtools import infra_model
from shared.config import SETTINGS

# Connection names: in Azure they are identity-based settings under the name as a prefix.
IDENTITY_CONNECTIONS = ("AzureWebJobsStorage", "DocumentStorage")
IDENTITY_SUFFIXES = ("blobServiceUri", "queueServiceUri", "tableServiceUri", "credential", "clientId")
# Secrets the hook scripts write; the app settings reference them by these names.
KEY_VAULT_SECRETS = {"CONNECTIVE-USERNAME", "CONNECTIVE-PASSWORD", "CALLBACK-SECRETS",
                     "WEBHOOK-SIGNING-SECRET"}


@pytest.fixture(scope="module")
def app_settings() -> dict[str, object]:
    return infra_model.app_settings()


def test_every_registered_setting_is_set_by_the_bicep(app_settings: dict[str, object]) -> None:
    missing = [s.name for s in SETTINGS if s.name not in IDENTITY_CONNECTIONS and s.name not in app_settings]
    assert not missing, f"add these settings to infra/modules/function-app.bicep (appSettings): {missing}"


def test_bicep_sets_no_setting_the_code_does_not_know(app_settings: dict[str, object]) -> None:
    registered = {s.name for s in SETTINGS}
    platform = {"APPLICATIONINSIGHTS_CONNECTION_STRING", "APPLICATIONINSIGHTS_AUTHENTICATION_STRING"}
    unknown = [name for name in app_settings
               if name not in registered | platform and name.split("__")[0] not in IDENTITY_CONNECTIONS]
    assert not unknown, f"settings in the Bicep that shared.config.SETTINGS does not declare: {unknown}"


@pytest.mark.parametrize("connection", IDENTITY_CONNECTIONS)
def test_storage_connections_are_identity_based(app_settings: dict[str, object], connection: str) -> None:
    assert connection in {s.name for s in SETTINGS}
    assert connection not in app_settings, "a plain connection setting would hold a connection string"
    for suffix in IDENTITY_SUFFIXES:
        assert f"{connection}__{suffix}" in app_settings, f"{connection}__{suffix} is not set"
    assert app_settings[f"{connection}__credential"] == "managedidentity"
    assert app_settings[f"{connection}__clientId"] == "identityClientId"


def test_secrets_are_key_vault_references(app_settings: dict[str, object]) -> None:
    for setting in SETTINGS:
        if setting.secret:
            assert infra_model.key_vault_secret(app_settings[setting.name]), f"{setting.name} must come from Key Vault"
    referenced = {infra_model.key_vault_secret(v) for v in app_settings.values()} - {None}
    assert referenced == KEY_VAULT_SECRETS


def test_key_vault_reference_pattern_rejects_plain_values() -> None:
    assert infra_model.key_vault_secret("@Microsoft.KeyVault(VaultName=kv;SecretName=A-B)") == "A-B"
    assert infra_model.key_vault_secret("@Microsoft.KeyVault(SecretUri=https://kv.vault.azure.net/secrets/A/)") == "A"
    assert infra_model.key_vault_secret("hunter2") is None
    assert infra_model.key_vault_secret("@Microsoft.KeyVault(VaultName=kv)") is None


def test_azure_values_that_differ_from_local(app_settings: dict[str, object]) -> None:
    assert app_settings["BLOB_TRIGGER_SOURCE"] == "EventGrid"
    assert app_settings["CONNECTIVE_RATE_LIMITER"] == "table"
    assert app_settings["WEBHOOK_ALLOW_LOOPBACK"] == "false"
    public_url = app_settings["PUBLIC_BASE_URL"]["operator"]["operands"]  # type: ignore[index]
    assert public_url["true_value"] == "https://${site.properties.defaultHostName}"
    assert app_settings["CONNECTIVE_BASE_URL"] == "connectiveBaseUrl"


@pytest.mark.parametrize("path", infra_model.bicep_files(), ids=lambda p: p.name)
def test_no_storage_keys_or_connection_strings(path) -> None:  # type: ignore[no-untyped-def]
    text = path.read_text()
    for pattern in (r"AccountKey", r"listKeys\(", r"DefaultEndpointsProtocol", r"SharedAccessSignature",
                    r"allowSharedKeyAccess:\s*true", r"listServiceSas\(", r"listAccountSas\("):
        assert not re.search(pattern, text), f"{pattern} in {path.name}"


def test_storage_accounts_refuse_shared_keys() -> None:
    storage = infra_model.parse(infra_model.INFRA / "modules" / "storage-account.bicep")["resources"]["account"]
    props = storage["config"]["properties"]
    assert props["allowSharedKeyAccess"] is False
    assert props["allowBlobPublicAccess"] is False
    assert props["minimumTlsVersion"] == "TLS1_2"
