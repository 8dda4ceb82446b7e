"""Callback delivery from background threads: delays, duplicates, drops, reordering, retries with backoff.

Never called inline in an API request. Due times use the real monotonic clock (not the sandbox clock),
because they model network behaviour.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import requests

from devtools.sandbox.knobs import Knobs
from devtools.sandbox.stats import Stats

LOG = logging.getLogger("devtools.sandbox.callbacks")
REORDER_HOLD_S = 1.0  # a held callback goes out alone when no other arrives within this time
WORKERS = 1  # one sender keeps callbacks in order unless a knob reorders them


@dataclass(order=True)
class _Delivery:
    due: float
    sequence: int
    url: str = field(compare=False)
    body: dict[str, Any] | None = field(compare=False)  # None: no body
    kind: str = field(compare=False)  # "callback" | "notification"
    attempt: int = field(default=1, compare=False)
    method: str = field(default="POST", compare=False)
    form: bool = field(default=False, compare=False)  # the body as application/x-www-form-urlencoded


def with_query(url: str, extra: dict[str, str], keep_query: bool = True) -> str:
    """Keep the registered URL's query (unless a variant drops it) and append the sandbox's parameters."""
    parts = urlsplit(url)
    kept = parse_qsl(parts.query, keep_blank_values=True) if keep_query else []
    query = kept + list(extra.items())
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


@dataclass(frozen=True)
class Shape:
    """One way to call a URL: method, the parameters added to its query, and the body (JSON or form)."""

    method: str
    query: dict[str, str]
    body: dict[str, Any] | None
    form: bool = False


def callback_shape(style: str, body: dict[str, Any]) -> Shape:
    """A package callback in one of the `callback_style` variants (the real wire format is unconfirmed)."""
    ids = {"packageId": body["PackageId"], "packageStatus": body["PackageStatus"]}
    if style == "post-json":
        return Shape("POST", {}, body)
    if style == "post-form":
        return Shape("POST", {}, {key: value for key, value in body.items() if value is not None}, form=True)
    if style == "get-package-id":
        return Shape("GET", {"packageId": body["PackageId"]}, None)
    if style == "no-status":
        return Shape("POST", {}, {"PackageId": body["PackageId"]})
    return Shape("POST", ids, body)


def notification_shape(style: str, body: dict[str, Any]) -> Shape:
    """A new-link request in one of the `notification_style` variants."""
    if style == "post-form":
        return Shape("POST", {}, body, form=True)
    if style == "get-query":
        return Shape("GET", {key: str(value) for key, value in body.items()}, None)
    if style == "bare":
        return Shape("POST", {}, None)
    return Shape("POST", {}, body)


class CallbackDispatcher:
    def __init__(self, knobs: Knobs, stats: Stats, rng: random.Random) -> None:
        self._knobs = knobs
        self._stats = stats
        self._rng = rng
        self._heap: list[_Delivery] = []
        self._held: _Delivery | None = None
        self._sequence = itertools.count()
        self._condition = threading.Condition()
        self._in_flight = 0
        self._stopped = False
        self._generation = 0
        self._session = requests.Session()
        self._threads = [threading.Thread(target=self._work, name=f"callbacks-{n}", daemon=True)
                         for n in range(WORKERS)]
        for thread in self._threads:
            thread.start()

    def set_knobs(self, knobs: Knobs) -> None:
        self._knobs = knobs

    def package_callback(self, url: str, body: dict[str, Any]) -> None:
        self._submit(url, callback_shape(self._knobs.callback_style, body), "callback")

    def notification(self, url: str, body: dict[str, Any]) -> None:
        self._submit(url, notification_shape(self._knobs.notification_style, body), "notification")

    def _submit(self, registered_url: str, shape: Shape, kind: str) -> None:
        knobs = self._knobs
        url = with_query(registered_url, shape.query, keep_query=not knobs.callback_drop_query)
        self._stats.record_callback("queued")
        if self._rng.random() < knobs.callback_drop_rate:
            self._stats.record_callback("dropped")
            return
        copies = 2 if self._rng.random() < knobs.callback_duplicate_rate else 1
        if copies == 2:
            self._stats.record_callback("duplicated")
        now = time.monotonic()
        with self._condition:
            for _ in range(copies):
                delivery = _Delivery(now + knobs.callback_delay, next(self._sequence), url, shape.body, kind,
                                     method=shape.method, form=shape.form)
                if knobs.callback_reorder:
                    self._reorder(delivery, now)
                else:
                    heapq.heappush(self._heap, delivery)
            self._condition.notify_all()

    def _reorder(self, delivery: _Delivery, now: float) -> None:
        """Hold one delivery; the next one goes out first, then the held one."""
        if self._held is None:
            delivery.due += REORDER_HOLD_S
            self._held = delivery
            heapq.heappush(self._heap, delivery)
            return
        held, self._held = self._held, None
        self._stats.record_callback("reordered")
        heapq.heappush(self._heap, delivery)
        # Re-key the held delivery to go right after this one.
        self._heap.remove(held)
        held.due = delivery.due
        held.sequence = next(self._sequence)
        heapq.heapify(self._heap)
        heapq.heappush(self._heap, held)

    def _work(self) -> None:
        while True:
            with self._condition:
                while not self._stopped and (not self._heap or self._heap[0].due > time.monotonic()):
                    timeout = self._heap[0].due - time.monotonic() if self._heap else None
                    self._condition.wait(timeout)
                if self._stopped:
                    return
                delivery = heapq.heappop(self._heap)
                if delivery is self._held:
                    self._held = None
                self._in_flight += 1
                generation = self._generation
            try:
                self._deliver(delivery, generation)
            finally:
                with self._condition:
                    self._in_flight -= 1
                    self._condition.notify_all()

    def _deliver(self, delivery: _Delivery, generation: int) -> None:
        knobs = self._knobs
        try:
            payload: dict[str, Any] = {"data": delivery.body} if delivery.form else {"json": delivery.body}
            response = self._session.request(delivery.method, delivery.url, timeout=(3, knobs.callback_timeout),
                                             **payload)
            ok = 200 <= response.status_code < 300
            outcome = f"HTTP {response.status_code}"
        except requests.RequestException as error:
            ok = False
            outcome = type(error).__name__
        if ok:
            self._stats.record_callback("sent" if delivery.kind == "callback" else "notifications_sent")
            return
        self._stats.record_callback("failed_attempts")
        if delivery.attempt >= knobs.callback_max_attempts:
            LOG.warning("callback given up after %d attempts (%s)", delivery.attempt, outcome)
            self._stats.record_callback("failed")
            return
        delay = knobs.callback_backoff * (2 ** (delivery.attempt - 1))
        with self._condition:
            if generation != self._generation:
                return
            delivery.attempt += 1
            delivery.due = time.monotonic() + delay
            delivery.sequence = next(self._sequence)
            heapq.heappush(self._heap, delivery)
            self._condition.notify_all()

    def pending(self) -> int:
        with self._condition:
            return len(self._heap) + self._in_flight

    def clear(self) -> None:
        with self._condition:
            self._heap.clear()
            self._held = None
            self._generation += 1

    def stop(self) -> None:
        with self._condition:
            self._stopped = True
            self._condition.notify_all()
