"""Per-package callback tokens and the callback URLs that carry them.

A token is HMAC-SHA256(secret, packageRef). Connective only ever sees the URL we registered, so a
valid token proves the caller learnt it from Connective (or from us). Several secrets are accepted
at once, so a secret can be rotated: add the new one first in CALLBACK_SECRETS, wait until every
pending package has been re-registered or finished, then drop the old one.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import quote, urlencode

from shared.config import Settings

CALLBACK_ROUTE = "callbacks/connective"
NOTIFICATION_ROUTE = "callbacks/connective-notify"


def _secrets(settings: Settings) -> list[str]:
    secrets = settings.get_list("CALLBACK_SECRETS")
    if not secrets:
        raise ValueError("CALLBACK_SECRETS is empty: callbacks cannot be authenticated")
    return secrets


def _sign(secret: str, package_ref: str) -> str:
    return hmac.new(secret.encode(), package_ref.encode(), hashlib.sha256).hexdigest()


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


def _url(settings: Settings, route: str, package_ref: str) -> str:
    query = {"token": callback_token(settings, package_ref)}
    function_key = settings.raw("CALLBACK_FUNCTION_KEY")
    if function_key:
        query["code"] = function_key
    base = settings.get("PUBLIC_BASE_URL").rstrip("/")
    return f"{base}/api/{route}/{quote(package_ref, safe='')}?{urlencode(query)}"


def callback_url(settings: Settings, package_ref: str) -> str:
    """CallBackUrl for a package: Connective calls it after every action and status change."""
    return _url(settings, CALLBACK_ROUTE, package_ref)


def notification_url(settings: Settings, package_ref: str) -> str:
    """NotificationCallBackUrl: Connective calls it when a signer asks for a new link."""
    return _url(settings, NOTIFICATION_ROUTE, package_ref)
