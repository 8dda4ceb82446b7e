"""The Connective eSignatures API v3 client: models, errors, transport policies, rate limiters."""

from shared.connective.client import ConnectiveClient
from shared.connective.config import ConnectiveConfig, RetryConfig
from shared.connective.errors import (
    AmbiguousCreateError,
    AmbiguousRequestError,
    AuthenticationError,
    ConflictError,
    ConnectiveError,
    ConnectiveHTTPError,
    InvalidRequestError,
    NotFoundError,
    RateLimitDeferred,
    RetryLater,
    ServerError,
    ThrottledError,
    TransportError,
)
from shared.connective.ratelimit import LocalRateLimiter, RateLimiter
from shared.connective.streaming import Download, DownloadResult

__all__ = [
    "AmbiguousCreateError",
    "AmbiguousRequestError",
    "AuthenticationError",
    "ConflictError",
    "ConnectiveClient",
    "ConnectiveConfig",
    "ConnectiveError",
    "ConnectiveHTTPError",
    "Download",
    "DownloadResult",
    "InvalidRequestError",
    "LocalRateLimiter",
    "NotFoundError",
    "RateLimitDeferred",
    "RateLimiter",
    "RetryConfig",
    "RetryLater",
    "ServerError",
    "ThrottledError",
    "TransportError",
]
