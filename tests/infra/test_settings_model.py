"""The settings model: typed values, every bad setting named at once, secrets masked, identity connections."""

from __future__ import annotations

import logging

import pytest

from devtools import infra_model
from shared.config import SETTINGS, InvalidSettings, MissingSetting, Settings
from shared.logging import log_event


def test_defaults_are_typed() -> None:
    settings = Settings({})
    assert settings.connective_rate_calls == 100 and isinstance(settings.connective_rate_calls, int)
    assert settings.queue_rate_wait_s == 2.0
    assert settings.delete_after_archive is False
    assert settings.connective_rate_limiter == "local"
    assert settings.callback_secrets == ()
    assert settings.public_base_url == "http://127.0.0.1:7071"


def test_an_empty_value_means_the_default() -> None:
    settings = Settings({"CONNECTIVE_RATE_CALLS": "", "TELEMETRY_EXPORTER": ""})
    assert settings.connective_rate_calls == 100
    assert settings.telemetry_exporter == "none"


def test_closed_value_sets_accept_any_case_and_keep_the_canonical_spelling() -> None:
    settings = Settings({"CONNECTIVE_RATE_LIMITER": " Table ", "BLOB_TRIGGER_SOURCE": "eventgrid",
                         "ITSME_TARGET_TYPE": "pdfa1a", "TELEMETRY_EXPORTER": "JSONL", "DELETE_AFTER_ARCHIVE": "yes"})
    assert settings.connective_rate_limiter == "table"
    assert settings.blob_trigger_source == "EventGrid"
    assert settings.itsme_target_type == "PdfA1A"
    assert settings.telemetry_exporter == "jsonl"
    assert settings.delete_after_archive is True


def test_bad_values_in_several_settings_make_one_error_naming_each() -> None:
    with pytest.raises(InvalidSettings) as caught:
        Settings({"CONNECTIVE_RATE_CALLS": "abc", "REMINDER_MAX_COUNT": "-1", "DELETE_AFTER_ARCHIVE": "maybe",
                  "CONNECTIVE_RATE_LIMITER": "redis", "PUBLIC_BASE_URL": "not a url",
                  "QUEUE_RATE_WAIT_S": "2s", "CONNECTIVE_USERNAME": "fine"})
    message = str(caught.value)
    named = {problem.split(":")[0] for problem in caught.value.problems}
    assert named == {"CONNECTIVE_RATE_CALLS", "REMINDER_MAX_COUNT", "DELETE_AFTER_ARCHIVE",
                     "CONNECTIVE_RATE_LIMITER", "PUBLIC_BASE_URL", "QUEUE_RATE_WAIT_S"}
    assert "'abc'" in message and "integer" in message
    assert "'local' or 'table'" in message
    assert "greater than or equal to 0" in message


def test_a_bad_value_never_shows_a_secret() -> None:
    with pytest.raises(InvalidSettings) as caught:
        Settings({"CONNECTIVE_PASSWORD": "hunter2", "CONNECTIVE_RATE_CALLS": "x",
                  "DocumentStorage__blobServiceUri": "x"})
    assert "hunter2" not in str(caught.value)
    assert "DocumentStorage__blobServiceUri" in str(caught.value)


def test_a_required_setting_fails_where_it_is_used() -> None:
    settings = Settings({})  # a process that never calls Connective builds its settings without the login
    with pytest.raises(MissingSetting, match=r"CONNECTIVE_USERNAME.*API user"):
        settings.require(settings.connective_username, "CONNECTIVE_USERNAME")
    with pytest.raises(MissingSetting, match="CALLBACK_SECRETS"):
        settings.require(settings.callback_secrets, "CALLBACK_SECRETS")


def test_secrets_are_masked_in_repr_str_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    settings = Settings({"CONNECTIVE_PASSWORD": "pw-hunter2", "CALLBACK_SECRETS": "cb-one,cb-two",
                         "WEBHOOK_SIGNING_SECRET": "whsec_c2VjcmV0", "DocumentStorage": "AccountKey=key-hunter3"})
    shown = f"{settings!r} {settings} {settings.model_dump()} {settings.storage_connection('DocumentStorage')}"
    for secret in ("pw-hunter2", "cb-one", "cb-two", "whsec_c2VjcmV0", "key-hunter3"):
        assert secret not in shown
    with caplog.at_level(logging.INFO):
        logging.getLogger("test.settings").info("settings %s", settings)
        log_event(logging.getLogger("test.settings"), "settings.loaded", settings=settings,
                  password=settings.connective_password)
    logged = caplog.text + str([getattr(record, "fields", None) for record in caplog.records])
    assert "pw-hunter2" not in logged and "cb-one" not in logged
    assert settings.require(settings.connective_password, "CONNECTIVE_PASSWORD").get_secret_value() == "pw-hunter2"


def test_identity_based_connection() -> None:
    settings = Settings({"DocumentStorage__blobServiceUri": "https://st.blob.core.windows.net",
                         "DocumentStorage__queueServiceUri": "https://st.queue.core.windows.net",
                         "DocumentStorage__tableServiceUri": "https://st.table.core.windows.net",
                         "DocumentStorage__credential": "managedidentity",
                         "DocumentStorage__clientId": "00000000-0000-0000-0000-000000000001",
                         "AzureWebJobsStorage": "UseDevelopmentStorage=true"})
    connection = settings.storage_connection("DocumentStorage")
    assert connection.connection_string is None and connection.identity is not None
    assert connection.identity.queue_service_uri == "https://st.queue.core.windows.net"
    assert connection.identity.table_service_uri == "https://st.table.core.windows.net"
    assert connection.identity.credential == "managedidentity"
    assert connection.identity.client_id == "00000000-0000-0000-0000-000000000001"
    host = settings.storage_connection("AzureWebJobsStorage")
    assert host.identity is None and host.connection_string is not None
    assert host.connection_string.get_secret_value() == "UseDevelopmentStorage=true"


def test_a_connection_string_wins_over_identity_settings() -> None:
    settings = Settings({"DocumentStorage": "UseDevelopmentStorage=true",
                         "DocumentStorage__blobServiceUri": "https://st.blob.core.windows.net"})
    assert settings.storage_connection("DocumentStorage").identity is None


def test_a_missing_connection_names_both_forms() -> None:
    with pytest.raises(MissingSetting, match=r"DocumentStorage \(or identity-based DocumentStorage__\*\)"):
        Settings({}).storage_connection("DocumentStorage")


def test_current_is_cached_until_the_environment_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REMINDER_MAX_COUNT", "4")
    first = Settings.current()
    assert first is Settings.current() and first.reminder_max_count == 4
    monkeypatch.setenv("REMINDER_MAX_COUNT", "5")
    assert Settings.current().reminder_max_count == 5


def test_every_field_is_declared_with_its_environment_name_and_description() -> None:
    assert len({s.name for s in SETTINGS}) == len(SETTINGS) == len(Settings.model_fields)
    assert all(s.description for s in SETTINGS)
    assert {s.name for s in SETTINGS if s.secret} == {"CONNECTIVE_PASSWORD", "CALLBACK_SECRETS",
                                                      "WEBHOOK_SIGNING_SECRET"}
    assert {s.name for s in SETTINGS if s.default is None} == {
        "AzureWebJobsStorage", "DocumentStorage", "CONNECTIVE_USERNAME", "CONNECTIVE_PASSWORD", "CALLBACK_SECRETS",
        "WEBHOOK_SIGNING_SECRET"}


def test_the_values_the_bicep_sets_are_valid_settings() -> None:
    parameters = infra_model.parameters(infra_model.FUNCTION_APP)
    literal = {name: value for name, value in infra_model.app_settings().items()
               if isinstance(value, str) and value not in parameters and "${" not in value
               and not infra_model.key_vault_secret(value)}
    assert "CONNECTIVE_RATE_LIMITER" in literal
    settings = Settings(literal)
    assert settings.connective_rate_limiter == "table" and settings.blob_trigger_source == "EventGrid"
