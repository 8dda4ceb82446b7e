"""Connection settings of one Connective API user (the app builds them from its settings: shared.connection)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from shared.connective.ratelimit import BudgetKey, connection_key

_V3_SUFFIX = re.compile(r"/v3/?$")


@dataclass(frozen=True)
class RetryConfig:
    """How one call retries.

    `max_attempts` counts the first attempt. `total_s` bounds the time spent after the first attempt
    (back-off sleeps, Retry-After waits, waits for rate tokens); no attempt starts after it.
    Back-off is exponential with full jitter: a uniform wait in [0, min(cap, base * 2**n)].
    """

    max_attempts: int = 6
    total_s: float = 120.0
    backoff_base_s: float = 0.5
    backoff_cap_s: float = 20.0


@dataclass(frozen=True)
class ConnectiveConfig:
    base_url: str
    username: str
    password: str = field(repr=False)
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 60.0
    retry: RetryConfig = RetryConfig()
    rate_calls: int = 100
    rate_window_s: float = 60.0
    # Extra spacing of the limiter: the gateway counts arrivals, a little after the token is granted.
    rate_latency_margin_s: float = 0.1
    # Documents of this size or more go as multipart/form-data; smaller byte strings as base64 JSON.
    multipart_threshold_bytes: int = 1024 * 1024
    download_chunk_bytes: int = 1024 * 1024
    pool_connections: int = 4
    pool_maxsize: int = 16

    def __post_init__(self) -> None:
        if not _V3_SUFFIX.search(self.base_url):
            raise ValueError(f"CONNECTIVE_BASE_URL must end with /webportalapi/v3, got {self.base_url!r}")
        if not self.username:
            raise ValueError("the Connective API username is empty")
        object.__setattr__(self, "base_url", self.base_url.rstrip("/"))

    @property
    def base_url_v31(self) -> str:
        """Set Process Information v3.1 lives under the sibling base path `/v3.1`."""
        return _V3_SUFFIX.sub("/v3.1", self.base_url)

    @property
    def connection_key(self) -> str:
        """Identifies the connection, and so the rate budget it shares: base URL + API user."""
        return connection_key(self.base_url, self.username)

    @property
    def budget_key(self) -> BudgetKey:
        """The connection with its budget: clients with equal keys share one limiter in a process."""
        return (self.connection_key, self.rate_calls, self.rate_window_s, self.rate_latency_margin_s)

    @property
    def timeout(self) -> tuple[float, float]:
        return (self.connect_timeout_s, self.read_timeout_s)
