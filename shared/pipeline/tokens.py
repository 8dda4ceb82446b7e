"""Per-package callback tokens and the callback URLs that carry them.

A token is HMAC-SHA256(secret, packageRef). Connective only ever sees the URL we registered, so a
valid token proves the caller learnt it from Connective (or from us). Several secrets are accepted
at once, so a secret can be rotated: add the new one first in CALLBACK_SECRETS, wait until every
pending package has been re-registered or finished, then drop the old one.

The token travels in the PATH (`/api/callbacks/connective/{packageRef}/{token}`): no public source
says whether Connective keeps a query string on the URL it calls, and a path survives any URL
handling. The routes are anonymous for the same reason (a function key would have to ride in the
query string); the token is the authentication. URLs registered before the change carry
`?token=` (and `&code=`) and keep working: the routes read the token from the query when the path
has none.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import TYPE_CHECKING
from urllib.parse import quote

if TYPE_CHECKING:  # the callback trigger module imports the routes at cold start, before pydantic is needed
    from pydantic import SecretStr

    from shared.config import Settings

CALLBACK_ROUTE = "callbacks/connective"
NOTIFICATION_ROUTE = "callbacks/connective-notify"
# `{token?}`: optional, so the query-string form of older packages reaches the same function.
ROUTE_PARAMETERS = "/{packageRef}/{token?}"


def _secrets(settings: Settings) -> tuple[SecretStr, ...]:
    return settings.require(settings.callback_secrets, "CALLBACK_SECRETS")


def _sign(secret: SecretStr, package_ref: str) -> str:
    return hmac.new(secret.get_secret_value().encode(), package_ref.encode(), hashlib.sha256).hexdigest()


def callback_token(settings: Settings, package_ref: str) -> str:
    """The token for a package, made with the current (first) secret."""
    return _sign(_secrets(settings)[0], package_ref)


def verify_callback_token(settings: Settings, package_ref: str, token: str | None) -> bool:
    """Constant-time check of a token against every configured secret."""
    if not token:
        return False
    presented = token.encode("utf-8", "replace")  # bytes: compare_digest refuses non-ASCII str (TypeError)
    matched = False
    for secret in _secrets(settings):
        # Compare against every secret, without stopping early, so timing says nothing about which matched.
        matched |= hmac.compare_digest(_sign(secret, package_ref).encode(), presented)
    return matched


def presented_token(route_params: dict[str, str], query: dict[str, str]) -> str | None:
    """The token of a callback request: from the path, else (URLs registered before the change) `?token=`."""
    return route_params.get("token") or query.get("token") or None


def _url(settings: Settings, route: str, package_ref: str) -> str:
    base = settings.public_base_url.rstrip("/")
    return f"{base}/api/{route}/{quote(package_ref, safe='')}/{callback_token(settings, package_ref)}"


def callback_url(settings: Settings, package_ref: str) -> str:
    """CallBackUrl for a package: Connective calls it after every action and status change."""
    return _url(settings, CALLBACK_ROUTE, package_ref)


def notification_url(settings: Settings, package_ref: str) -> str:
    """NotificationCallBackUrl: Connective calls it when a signer asks for a new link."""
    return _url(settings, NOTIFICATION_ROUTE, package_ref)
