"""A scripted HTTP server below `requests`: a transport adapter that answers from a queue.

It is mounted on the client's session for `http://fake/`, so everything above the socket (the
client, its retry loop, requests' own request preparation and response handling) runs for real.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests
import urllib3
from requests.adapters import BaseAdapter

from shared.connective import ConnectiveClient, ConnectiveConfig, LocalRateLimiter, RetryConfig
from shared.connective.retry import Clock

BASE_URL = "http://fake/webportalapi/v3"
USER, PASSWORD = "api-user", "fake-password-9f3k"


@dataclass
class Sent:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes


Answer = Callable[[requests.PreparedRequest], requests.Response] | tuple[int, Any] | tuple[int, Any, dict[str, str]] \
    | Exception


def response(request: requests.PreparedRequest, status: int, body: Any = None,
             headers: dict[str, str] | None = None) -> requests.Response:
    data = body if isinstance(body, bytes) else b"" if body is None else json.dumps(body).encode()
    raw = urllib3.HTTPResponse(body=io.BytesIO(data), headers={"Content-Length": str(len(data)), **(headers or {})},
                               status=status, preload_content=False)
    result = requests.Response()
    result.status_code = status
    result.headers = requests.structures.CaseInsensitiveDict(raw.headers)
    result.raw = raw
    result.url = request.url or ""
    result.request = request
    result.reason = "scripted"
    return result


class FakeAdapter(BaseAdapter):
    def __init__(self) -> None:
        super().__init__()
        self.answers: list[Answer] = []
        self.default: Answer | None = None  # the answer once the script has run out
        self.sent: list[Sent] = []

    def script(self, *answers: Answer) -> FakeAdapter:
        self.answers.extend(answers)
        return self

    def send(self, request: requests.PreparedRequest, stream: bool = False, timeout: Any = None,
             verify: Any = True, cert: Any = None, proxies: Any = None) -> requests.Response:
        body = request.body
        if hasattr(body, "read"):
            chunks = []
            while chunk := body.read(64 * 1024):  # type: ignore[union-attr]
                chunks.append(chunk)
            data = b"".join(chunks)
        elif body is not None and not isinstance(body, str | bytes):  # an iterable of blocks
            data = b"".join(body)  # type: ignore[arg-type]
        else:
            data = body.encode() if isinstance(body, str) else (body or b"")
        self.sent.append(Sent(request.method or "", request.url or "", dict(request.headers), data))
        if self.answers:
            answer = self.answers.pop(0)
        elif self.default is not None:
            answer = self.default
        else:
            raise AssertionError(f"unscripted request {request.method} {request.url}")
        if isinstance(answer, Exception):
            raise answer
        if callable(answer):
            return answer(request)
        return response(request, *answer)

    def close(self) -> None:
        pass


class FakeClock(Clock):
    """Records the retry loop's sleeps instead of sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@dataclass
class Harness:
    client: ConnectiveClient
    adapter: FakeAdapter
    clock: FakeClock
    limiter: Any = field(default=None)


def make_client(*, max_attempts: int = 6, total_s: float = 120.0, limiter: Any = None,
                multipart_threshold_bytes: int = 1024 * 1024, **config: Any) -> Harness:
    adapter = FakeAdapter()
    clock = FakeClock()
    cfg = ConnectiveConfig(base_url=BASE_URL, username=USER, password=PASSWORD,
                           retry=RetryConfig(max_attempts=max_attempts, total_s=total_s),
                           multipart_threshold_bytes=multipart_threshold_bytes, **config)
    limiter = limiter or LocalRateLimiter(10_000, 60)
    client = ConnectiveClient(cfg, limiter, clock=clock)
    client.session.mount("http://fake/", adapter)
    return Harness(client, adapter, clock, limiter)
