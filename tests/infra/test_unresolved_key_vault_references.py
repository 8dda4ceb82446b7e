"""A Key Vault reference that Azure could not resolve reads as unset: never a secret, never part of a URL.

App Service leaves the reference text itself in the environment when it cannot resolve it (the
identity has no access yet, the secret does not exist, the vault is unreachable).
"""

from __future__ import annotations

import hashlib
import hmac
import logging

import pytest

from shared.config import SETTINGS, MissingSetting, Settings, is_unresolved_key_vault_reference
from shared.pipeline import tokens


def _reference(secret: str) -> str:
    return f"@Microsoft.KeyVault(VaultName=kv-test;SecretName={secret})"


SECRET_SETTINGS = [setting.name for setting in SETTINGS if setting.secret]
FIELD = {info.alias: attribute for attribute, info in Settings.model_fields.items()}


def test_detection() -> None:
    assert is_unresolved_key_vault_reference(_reference("A"))
    assert is_unresolved_key_vault_reference("  @microsoft.keyvault(SecretUri=https://kv.vault.azure.net/secrets/A/)")
    assert not is_unresolved_key_vault_reference("plain-value")
    assert not is_unresolved_key_vault_reference("")
    assert not is_unresolved_key_vault_reference(None)


@pytest.mark.parametrize("name", SECRET_SETTINGS)
def test_an_unresolved_secret_is_unset(name: str) -> None:
    settings = Settings({name: _reference(name.replace("_", "-"))})
    value = getattr(settings, FIELD[name])
    assert value in (None, ())
    with pytest.raises(MissingSetting, match="Key Vault reference that could not be resolved"):
        settings.require(value, name)


def test_an_unresolved_setting_with_a_default_falls_back_to_it() -> None:
    settings = Settings({"CONNECTIVE_READ_TIMEOUT_S": _reference("TIMEOUT")})
    assert settings.connective_read_timeout_s == 60


def test_a_resolved_value_is_kept() -> None:
    secrets = Settings({"CALLBACK_SECRETS": "s1, s2"}).callback_secrets
    assert [secret.get_secret_value() for secret in secrets] == ["s1", "s2"]


def test_an_unresolved_storage_connection_falls_back_to_identity_settings() -> None:
    settings = Settings({"DocumentStorage": _reference("DOCS"),
                         "DocumentStorage__blobServiceUri": "https://st.blob.core.windows.net",
                         "DocumentStorage__clientId": _reference("CLIENT")})
    connection = settings.storage_connection("DocumentStorage")
    assert connection.connection_string is None and connection.identity is not None
    assert connection.identity.blob_service_uri == "https://st.blob.core.windows.net"
    assert connection.identity.client_id is None
    with pytest.raises(MissingSetting, match="DocumentStorage"):
        Settings({"DocumentStorage": _reference("DOCS")}).storage_connection("DocumentStorage")


def test_the_unresolved_setting_is_reported_once_by_name(caplog: pytest.LogCaptureFixture) -> None:
    name = "WEBHOOK_SIGNING_SECRET"
    with caplog.at_level(logging.WARNING, logger="shared.config"):
        for _ in range(3):
            Settings({name: _reference("WEBHOOK-SIGNING-SECRET")})
    reports = [r for r in caplog.records if r.getMessage() == "config.unresolved_key_vault_reference"
               and r.fields["setting"] == name]  # type: ignore[attr-defined]
    assert len(reports) <= 1  # another test in this process may have reported it already
    assert all("@Microsoft" not in str(r.fields) for r in reports)  # type: ignore[attr-defined]


def test_no_unresolved_reference_reaches_a_callback_url() -> None:
    env = {name: _reference(name.replace("_", "-")) for name in SECRET_SETTINGS}
    env["CALLBACK_SECRETS"] = "a-real-callback-secret"
    env["PUBLIC_BASE_URL"] = "https://func.example.net"
    settings = Settings(env)
    for url in (tokens.callback_url(settings, "pkg-1"), tokens.notification_url(settings, "pkg-1")):
        assert url.startswith("https://func.example.net/api/")
        assert "KeyVault" not in url and "%40Microsoft" not in url and "@" not in url


def test_an_unresolved_callback_secret_never_signs() -> None:
    settings = Settings({"CALLBACK_SECRETS": _reference("CALLBACK-SECRETS"), "PUBLIC_BASE_URL": "https://f.example"})
    with pytest.raises(MissingSetting, match="CALLBACK_SECRETS"):
        tokens.callback_url(settings, "pkg-1")
    # A token made with the reference text as the key (what using it as a secret would accept) is refused.
    forged = hmac.new(_reference("CALLBACK-SECRETS").encode(), b"pkg-1", hashlib.sha256).hexdigest()
    try:
        accepted = tokens.verify_callback_token(settings, "pkg-1", forged)
    except MissingSetting:
        accepted = False
    assert accepted is False
