"""The client built from app settings (real sandbox)."""

from __future__ import annotations

import pytest

from shared.config import Settings
from shared.connection import connective_client
from shared.logging import redact_text


def settings_for(sandbox, **extra: str) -> Settings:
    return Settings({"CONNECTIVE_BASE_URL": sandbox.base_url, "CONNECTIVE_USERNAME": sandbox.user,
                     "CONNECTIVE_PASSWORD": sandbox.password, "CONNECTIVE_RATE_CALLS": "1000",
                     "CONNECTIVE_MULTIPART_THRESHOLD_KB": "16", **extra})


def test_from_settings_shares_the_session_and_limiter_and_registers_the_password(sandbox):
    first = connective_client(settings_for(sandbox))
    second = connective_client(settings_for(sandbox))
    assert first.session is second.session and first.limiter is second.limiter
    assert first.rate_wait_s == 120.0
    assert first.with_rate_wait(2).rate_wait_s == 2
    assert sandbox.password not in redact_text(f"password is {sandbox.password}")
    assert first.package_list().items == []
    other_user = connective_client(settings_for(sandbox, CONNECTIVE_USERNAME="someone-else"))
    assert other_user.limiter is not first.limiter


def test_a_missing_password_is_a_clear_error():
    with pytest.raises(Exception, match="CONNECTIVE_PASSWORD"):
        connective_client(Settings({"CONNECTIVE_USERNAME": "u"}))
