"""One limiter per connection (and budget) per process, whichever way a client of it is built."""

from __future__ import annotations

from shared.config import Settings
from shared.connection import connective_client
from shared.connective import ConnectiveClient, ConnectiveConfig

BASE_URL = "http://registry.test/webportalapi/v3"


def _settings(user: str) -> Settings:
    return Settings({"CONNECTIVE_BASE_URL": BASE_URL, "CONNECTIVE_USERNAME": user, "CONNECTIVE_PASSWORD": "pw-1234",
                     "CONNECTIVE_RATE_CALLS": "9", "CONNECTIVE_RATE_WINDOW_S": "60"})


def _config(user: str) -> ConnectiveConfig:
    return ConnectiveConfig(base_url=BASE_URL, username=user, password="pw-1234", rate_calls=9, rate_window_s=60.0,
                            rate_latency_margin_s=0.1)


def test_a_client_built_from_its_config_shares_the_limiter_of_one_built_from_settings() -> None:
    from_settings = connective_client(_settings("constructed-second"))
    constructed = ConnectiveClient(_config("constructed-second"))
    assert constructed.limiter is from_settings.limiter


def test_a_client_built_from_settings_shares_the_limiter_of_one_built_from_its_config() -> None:
    constructed = ConnectiveClient(_config("constructed-first"))
    from_settings = connective_client(_settings("constructed-first"))
    assert from_settings.limiter is constructed.limiter
    assert ConnectiveClient(_config("constructed-first")).limiter is constructed.limiter
    assert ConnectiveClient(_config("another-user")).limiter is not constructed.limiter
