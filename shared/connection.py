"""The configured Connective connection, from app settings: its config, its limiter and its client.

The client package (`shared.connective`) knows nothing of app settings, storage or our logging. This
module reads the settings, picks the limiter (`CONNECTIVE_RATE_LIMITER`: in-process, or shared by the
fleet through the Table `RateLimits`), injects it into the client, and registers the connection's
secrets with the log redaction. Every limiter comes from `shared.connective.ratelimit.connection_limiter`,
so one process has one budget per connection, whichever way its clients are built.
"""

from __future__ import annotations

import base64
import threading

from shared.config import Settings
from shared.connective.client import ConnectiveClient
from shared.connective.config import ConnectiveConfig, RetryConfig
from shared.connective.ratelimit import RateLimiter, connection_limiter
from shared.logging import register_secrets

LOCAL = "local"
TABLE = "table"

_clients: dict[tuple[ConnectiveConfig, int], ConnectiveClient] = {}
_clients_lock = threading.Lock()


def connective_config(settings: Settings) -> ConnectiveConfig:
    return ConnectiveConfig(
        base_url=settings.connective_base_url,
        username=settings.require(settings.connective_username, "CONNECTIVE_USERNAME"),
        # ConnectiveConfig keeps it out of its repr; the client hands it to the HTTP Basic auth.
        password=settings.require(settings.connective_password, "CONNECTIVE_PASSWORD").get_secret_value(),
        connect_timeout_s=settings.connective_connect_timeout_s,
        read_timeout_s=settings.connective_read_timeout_s,
        retry=RetryConfig(
            max_attempts=settings.connective_retry_max_attempts,
            total_s=settings.connective_retry_total_s,
        ),
        rate_calls=settings.connective_rate_calls,
        rate_window_s=settings.connective_rate_window_s,
        rate_latency_margin_s=settings.connective_rate_latency_margin_s,
        multipart_threshold_bytes=settings.connective_multipart_threshold_kb * 1024,
    )


def limiter_from_settings(settings: Settings, connection_key: str) -> RateLimiter:
    """The limiter of a connection, one per connection (and budget) per process."""
    calls = settings.connective_rate_calls
    window_s = settings.connective_rate_window_s
    latency_margin_s = settings.connective_rate_latency_margin_s
    if settings.connective_rate_limiter == LOCAL:
        return connection_limiter((connection_key, calls, window_s, latency_margin_s))

    def build() -> RateLimiter:
        # Imported here so local runs never load the Table SDK for the limiter.
        from shared.storage.ratelimit import table_limiter_from_settings

        return table_limiter_from_settings(settings, connection_key, calls, window_s, latency_margin_s)

    return connection_limiter((connection_key, calls, window_s, latency_margin_s), build)


def register_connection_secrets(config: ConnectiveConfig) -> None:
    """The password and the Basic credentials it makes never reach a log line."""
    token = base64.b64encode(f"{config.username}:{config.password}".encode()).decode("ascii")
    register_secrets([config.password, token])


def connective_client(settings: Settings) -> ConnectiveClient:
    """The client of the configured connection. Clients built from equal settings share one session."""
    config = connective_config(settings)
    limiter = limiter_from_settings(settings, config.connection_key)
    with _clients_lock:
        client = _clients.get((config, id(limiter)))
        if client is None:
            register_connection_secrets(config)
            client = ConnectiveClient(config, limiter)
            _clients[(config, id(limiter))] = client
    return client
