"""The routes Connective calls need no function key, because the deployment creates none.

The callback and new-link URLs the app registers with each package carry the per-package token in
their path and no `code=`; the functions behind them must therefore be anonymous at the host. Were
one of them to go back to AuthLevel.FUNCTION, every callback in Azure would get 401 (the hooks
create no function key, see docs/DEPLOY.md "Connective and the callback URL").
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import azure.functions as func
import pytest

from devtools import infra_model
from shared.config import Settings
from shared.pipeline import tokens

SETTINGS = Settings({"CALLBACK_SECRETS": "route-test-secret", "PUBLIC_BASE_URL": "https://func.example.net"})
REGISTERED_URLS = {
    "CallBackUrl": tokens.callback_url(SETTINGS, "pkg-0001"),
    "NotificationCallBackUrl": tokens.notification_url(SETTINGS, "pkg-0001"),
}


def _http_functions() -> list[tuple[str, str, func.AuthLevel]]:
    """(function name, route template, auth level) of every HTTP function the app registers."""
    found = []
    for function in infra_model.registered_functions():
        trigger = function.get_trigger()
        if trigger.get_binding_name() == "httpTrigger":
            found.append((function.get_function_name(), trigger.route, trigger.auth_level))  # type: ignore[attr-defined]
    return found


def _matches(template: str, path: str) -> bool:
    """Whether a Functions route template (`{name}`, optional `{name?}`) matches a path below /api/."""
    pattern = ""
    for segment in template.split("/"):
        if re.fullmatch(r"\{\w+\?\}", segment):
            pattern += r"(?:/[^/]+)?"
        else:
            pattern += "/" + re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(segment))
    return re.fullmatch(pattern.removeprefix("/"), path) is not None


def _function_for(url: str) -> tuple[str, str, func.AuthLevel]:
    path = urlsplit(url).path.removeprefix("/api/")
    matching = [entry for entry in _http_functions() if _matches(entry[1], path)]
    assert len(matching) == 1, f"{url} is served by {matching}"
    return matching[0]


@pytest.mark.parametrize("kind", sorted(REGISTERED_URLS))
def test_each_registered_url_reaches_an_anonymous_function(kind: str) -> None:
    url = REGISTERED_URLS[kind]
    assert "code=" not in url, f"{kind} carries a function key, which the deployment does not create"
    name, route, auth_level = _function_for(url)
    assert auth_level == func.AuthLevel.ANONYMOUS, f"{name} ({route}) must be anonymous: Connective sends no key"


def test_every_callback_route_is_anonymous() -> None:
    callbacks = [entry for entry in _http_functions() if entry[1].startswith("callbacks/")]
    assert {entry[0] for entry in callbacks} >= {"connective_callback", "connective_link_request"}
    assert all(entry[2] == func.AuthLevel.ANONYMOUS for entry in callbacks), callbacks


def test_route_matcher() -> None:
    assert _matches("callbacks/connective/{packageRef}/{token?}", "callbacks/connective/p1/abc")
    assert _matches("callbacks/connective/{packageRef}/{token?}", "callbacks/connective/p1")
    assert not _matches("callbacks/connective/{packageRef}/{token?}", "callbacks/connective-notify/p1/abc")
    assert not _matches("packages/{ref}", "packages/a/b")


def test_the_deployment_creates_no_function_key() -> None:
    for script in (infra_model.ROOT / "scripts").glob("*.sh"):
        text = script.read_text()
        assert "function keys set" not in text and "keys set" not in text, script.name
    assert "CALLBACK-FUNCTION-KEY" not in infra_model.FUNCTION_APP.read_text()
