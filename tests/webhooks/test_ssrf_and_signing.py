"""The subscriber URL guard and the delivery signature."""

from __future__ import annotations

import base64
import time

import pytest

from shared.webhooks.signing import receiver_secret, signed_headers
from shared.webhooks.ssrf import UnsafeUrlError, UrlPolicy, check_url, guarded_session
from tests.webhooks.receiver import Receiver
from tests.webhooks.verify import verifies

STRICT = UrlPolicy(allow_loopback=False)
LOCAL = UrlPolicy(allow_loopback=True)


@pytest.mark.parametrize("url, reason", [
    ("http://8.8.8.8/hook", "scheme must be https"),
    ("ftp://8.8.8.8/hook", "scheme must be https"),
    ("https://127.0.0.1/hook", "loopback"),
    ("https://localhost/hook", "loopback"),
    ("https://[::1]/hook", "loopback"),
    ("https://[::ffff:127.0.0.1]/hook", "loopback"),
    ("https://[::ffff:10.1.2.3]/hook", "private"),
    ("https://10.0.0.5/hook", "private"),
    ("https://172.16.4.4/hook", "private"),
    ("https://192.168.1.1/hook", "private"),
    ("https://169.254.169.254/latest/meta-data", "link-local"),
    ("https://[fe80::1]/hook", "link-local"),
    ("https://[fc00::1]/hook", "private"),
    ("https://224.0.0.1/hook", "multicast"),
    ("https://[ff02::1]/hook", "multicast"),
    ("https://0.0.0.0/hook", "unspecified"),
    ("https://240.0.0.1/hook", "reserved"),
    ("https://100.64.0.1/hook", "non-global"),
    ("https://[2002:a00:1::]/hook", "private"),  # 6to4 wrapping 10.0.0.1
    ("https://user:pw@8.8.8.8/hook", "credentials"),
    ("https:///hook", "no host"),
    ("https://does-not-exist.invalid/hook", "does not resolve"),
])
def test_unsafe_urls_are_refused_with_the_reason(url: str, reason: str) -> None:
    with pytest.raises(UnsafeUrlError, match=reason):
        check_url(url, STRICT)


def test_public_https_urls_pass() -> None:
    assert check_url("https://8.8.8.8/hook?sig=abc", STRICT)
    assert check_url("https://[2001:4860:4860::8888]/hook", STRICT)


def test_local_mode_allows_http_and_loopback_only() -> None:
    assert check_url("http://127.0.0.1:8080/hook", LOCAL)
    assert check_url("http://[::1]:8080/hook", LOCAL)
    for url in ("http://10.0.0.5/hook", "https://169.254.169.254/", "https://192.168.0.1/"):
        with pytest.raises(UnsafeUrlError):
            check_url(url, LOCAL)


def test_the_connected_peer_is_checked_so_dns_rebinding_cannot_reach_loopback(receiver: Receiver) -> None:
    # The URL check is bypassed on purpose: the socket-level check alone must stop the request,
    # as it would when a name re-resolves to an internal address after it was validated.
    session = guarded_session(STRICT)
    with pytest.raises(UnsafeUrlError, match="loopback address"):
        session.post(receiver.url, data=b"{}", allow_redirects=False, timeout=5)
    assert receiver.requests == []
    assert guarded_session(LOCAL).post(receiver.url, data=b"{}", timeout=5).status_code == 200
    assert len(receiver.requests) == 1


def _delivery(secrets: list[str], body: bytes = b'{"id":"e1"}', event_id: str = "e1",
              timestamp: int | None = None) -> dict[str, str]:
    return signed_headers(secrets, event_id, int(time.time()) if timestamp is None else timestamp, body)


def test_signature_round_trip_and_tamper_checks() -> None:
    """The stock Standard Webhooks verifier accepts a delivery and refuses any change to it."""
    secret, body = "s3cret", b'{"id":"e1"}'
    headers = _delivery([secret], body)
    assert headers["webhook-id"] == "e1" and headers["webhook-signature"].startswith("v1,")
    assert verifies(secret, body, headers)
    assert not verifies(secret, body + b" ", headers)
    assert not verifies("other", body, headers)
    assert not verifies(secret, body, {**headers, "webhook-id": "e2"})  # the id is signed
    assert not verifies(secret, body, {**headers, "webhook-timestamp": str(int(headers["webhook-timestamp"]) - 1)})
    unversioned = headers["webhook-signature"].replace("v1,", "v0,")
    assert not verifies(secret, body, {**headers, "webhook-signature": unversioned})
    assert not verifies(secret, body, {k: v for k, v in headers.items() if k != "webhook-timestamp"})


def test_a_replay_outside_the_tolerance_window_is_refused() -> None:
    stale = int(time.time()) - 301  # the specification's verifiers allow five minutes either way
    assert not verifies("s3cret", b"{}", _delivery(["s3cret"], b"{}", timestamp=stale))
    assert verifies("s3cret", b"{}", _delivery(["s3cret"], b"{}", timestamp=stale + 60))


def test_rotation_signs_with_every_secret() -> None:
    headers = _delivery(["new", "old"], b"{}")
    assert headers["webhook-signature"].count("v1,") == 2
    assert verifies("new", b"{}", headers)
    assert verifies("old", b"{}", headers)


def test_secrets_in_the_specifications_own_form_are_used_as_given() -> None:
    key = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
    assert receiver_secret(key) == key
    assert receiver_secret("plain") == "whsec_" + base64.b64encode(b"plain").decode()
    assert verifies(key, b"{}", _delivery([key], b"{}"))
