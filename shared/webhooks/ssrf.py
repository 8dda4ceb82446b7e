"""The guard that keeps webhook deliveries away from internal addresses (SSRF).

A subscriber URL is checked twice: when the subscription is made (a clear 400 for the caller) and
on every delivery, at the socket the request actually goes out on. The second check is what holds
against DNS rebinding: a name that resolved to a public address at subscription time may resolve
to 169.254.169.254 or 10.0.0.5 an hour later, so the address that counts is the connected peer's.

Allowed: https URLs whose every resolved address is a public unicast address. With
`WEBHOOK_ALLOW_LOOPBACK=true` (local runs) http and loopback addresses are allowed as well;
private, link-local and the rest stay refused.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UnsafeUrlError(ValueError):
    """A subscriber URL that may not be called. The message says why, without secrets."""


@dataclass(frozen=True)
class UrlPolicy:
    allow_loopback: bool = False

    @property
    def schemes(self) -> frozenset[str]:
        return frozenset({"https", "http"}) if self.allow_loopback else frozenset({"https"})


def _unwrap(address: IPAddress) -> IPAddress:
    """IPv4-mapped (::ffff:a.b.c.d) and 6to4/NAT64-style embeddings are judged as the IPv4 inside."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.sixtofour is not None:
            return address.sixtofour
    return address


def address_refusal(address: IPAddress, policy: UrlPolicy) -> str | None:
    """Why `address` may not be called, or None when it may."""
    address = _unwrap(address)
    if address.is_loopback:
        return None if policy.allow_loopback else "loopback address"
    checks = (
        ("unspecified address", address.is_unspecified),
        ("link-local address", address.is_link_local),
        ("multicast address", address.is_multicast),
        ("reserved address", address.is_reserved),
        ("private address", address.is_private),
        ("non-global address", not address.is_global),
    )
    for reason, refused in checks:
        if refused:
            return reason
    return None


def resolve(host: str, port: int) -> list[IPAddress]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise UnsafeUrlError(f"the host {host!r} does not resolve") from error
    return [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]


def check_url(url: str, policy: UrlPolicy) -> str:
    """Validate a subscriber URL and every address its host resolves to. Returns the URL."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in policy.schemes:
        allowed = " or ".join(sorted(policy.schemes))
        raise UnsafeUrlError(f"the URL scheme must be {allowed}")
    if not parts.hostname:
        raise UnsafeUrlError("the URL has no host")
    if parts.username or parts.password:
        raise UnsafeUrlError("the URL must not carry credentials before the host")
    try:
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    except ValueError as error:
        raise UnsafeUrlError("the URL has an invalid port") from error
    addresses = resolve(parts.hostname, port)
    for address in addresses:
        reason = address_refusal(address, policy)
        if reason:
            raise UnsafeUrlError(f"the host {parts.hostname!r} resolves to a {reason} ({address})")
    return url


def _check_peer(sock: socket.socket, policy: UrlPolicy) -> None:
    peer = ipaddress.ip_address(str(sock.getpeername()[0]).split("%", 1)[0])
    reason = address_refusal(peer, policy)
    if reason:
        sock.close()
        raise UnsafeUrlError(f"refused to talk to a {reason} ({peer})")


# urllib3 has no hook between "socket connected" and "request sent" other than the connection
# class, so the peer check lives in these small subclasses.
class _PeerChecked(HTTPConnection):
    """The peer check, for plain and TLS connections alike (HTTPSConnection is an HTTPConnection)."""

    url_policy = UrlPolicy()

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        _check_peer(sock, self.url_policy)
        return sock


class _GuardedHTTPConnection(_PeerChecked):
    pass


class _GuardedHTTPSConnection(_PeerChecked, HTTPSConnection):
    pass


class GuardedAdapter(HTTPAdapter):
    """A requests adapter whose connections refuse peers that `policy` does not allow."""

    def __init__(self, policy: UrlPolicy) -> None:
        self._policy = policy
        super().__init__(max_retries=0)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        policy = self._policy
        http_conn = type("PolicyHTTPConnection", (_GuardedHTTPConnection,), {"url_policy": policy})
        https_conn = type("PolicyHTTPSConnection", (_GuardedHTTPSConnection,), {"url_policy": policy})
        http_pool = type("PolicyHTTPPool", (HTTPConnectionPool,), {"ConnectionCls": http_conn})
        https_pool = type("PolicyHTTPSPool", (HTTPSConnectionPool,), {"ConnectionCls": https_conn})
        self.poolmanager.pool_classes_by_scheme = {"http": http_pool, "https": https_pool}


def guarded_session(policy: UrlPolicy) -> requests.Session:
    """A session for calling subscriber URLs: peer check on every connection, no proxies from the
    environment (a proxy would be the peer, hiding the real target), no redirects (callers pass
    allow_redirects=False)."""
    session = requests.Session()
    session.trust_env = False
    adapter = GuardedAdapter(policy)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session
