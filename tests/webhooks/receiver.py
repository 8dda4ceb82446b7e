"""Webhook test helpers: a receiver on loopback that records each request and answers with scripted codes,
and a reader of one subscriber's messages on the webhook-events queue."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from shared.storage import names
from shared.storage.store import Store
from tests.loopback import serving


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    port: int
    statuses: list[int] = field(default_factory=list)  # answers in order; 200 once they run out
    requests: list[Received] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"


@contextmanager
def running_receiver() -> Iterator[Receiver]:
    receiver = Receiver(port=0)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            receiver.requests.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            status = receiver.statuses.pop(0) if receiver.statuses else 200
            self.send_response(status)
            if status in (301, 302, 307):
                self.send_header("Location", "http://127.0.0.1:9/elsewhere")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    with serving(Handler) as server:
        receiver.port = server.server_address[1]
        yield receiver


def take_messages(store: Store, subscription_id: str) -> list[dict[str, Any]]:
    """Messages on webhook-events for one subscriber (others are left on the queue).

    Reads until the queue shows nothing more: other tests of the session leave their subscribers'
    messages on the same queue, so one batch may not reach ours. Messages read stay hidden until the
    end, so each is seen once."""
    queue = store.clients.queue(names.WEBHOOK_EVENTS_QUEUE)
    found = []
    others = []
    while batch := list(queue.receive_messages(max_messages=32, visibility_timeout=30)):
        for message in batch:
            payload = json.loads(message.content)
            if payload["subscriptionId"] == subscription_id:
                found.append(payload)
                queue.delete_message(message)
            else:
                others.append(message)
    for message in others:
        queue.update_message(message, content=bytes(message.content).decode(), visibility_timeout=0)
    return found
