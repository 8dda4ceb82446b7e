"""Calls that leave late: both limiters keep the gateway's rule whatever the delay from grant to send.

Time is simulated: every limiter runs on a virtual clock, and each worker is descheduled between
its grant and the moment its request would leave for a delay drawn from a seeded mix (mostly a
few milliseconds, sometimes a stall of up to 1.5 s, far beyond every margin). Events are run in
virtual-time order, so the outcome depends on the injected delays only, never on the machine.
Each request re-checks its permit just before it would leave, as the transport does; a void
permit sends nothing and its worker takes a new one. The gateway sees a sent call somewhere in
the latency margin after it left.

Each test also shows what the gateway would have seen had the void permits been sent anyway: more
than the budget in some window, so the delays are large enough to break a limiter that counted
on its grant time alone.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from shared.connective.ratelimit import LocalRateLimiter, Permit, RateLimitDeferred, RateLimiter
from shared.storage.ratelimit import TableRateLimiter
from tests.limiter.windows import most_in_any_window

CALLS = 10
WINDOW_S = 1.0
LATENCY_MARGIN_S = 0.02
SEND_ALLOWANCE_S = 0.05
SIMULATED_S = 12.0
# Time from a call's arrival to its answer, before the worker asks for its next permit.
ANSWER_S = 0.004


class VirtualClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def grant_to_send_delay(rng: random.Random) -> float:
    """Mostly a few milliseconds; sometimes tens (a busy core); now and then a stall (GC, swapped out)."""
    draw = rng.random()
    if draw < 0.80:
        return rng.uniform(0.0, 0.005)
    if draw < 0.95:
        return rng.uniform(0.01, 0.08)
    return rng.uniform(0.1, 1.5)


@dataclass
class Gateway:
    """What the gateway sees, and what it would have seen had void permits been sent."""

    arrivals: list[float] = field(default_factory=list)
    void_arrivals: list[float] = field(default_factory=list)


@dataclass(order=True)
class Event:
    at: float
    sequence: int
    run: Callable[[], None] = field(compare=False)


class Simulation:
    """Workers taking permits from their limiters and sending, in virtual-time order."""

    def __init__(self, clock: VirtualClock, seed: int) -> None:
        self.clock = clock
        self.rng = random.Random(seed)
        self.gateway = Gateway()
        self.late_permits = 0
        self._events: list[Event] = []
        self._sequence = itertools.count()
        self._end = clock.now + SIMULATED_S

    def at(self, moment: float, run: Callable[[], None]) -> None:
        if moment < self._end:
            heapq.heappush(self._events, Event(moment, next(self._sequence), run))

    def worker(self, limiter: RateLimiter, max_wait_s: float) -> None:
        """One worker's loop: take a permit (coming back when told to), get descheduled, leave or not."""

        def ask() -> None:
            try:
                permit = limiter.acquire(max_wait_s)
            except RateLimitDeferred as deferred:
                self.at(self.clock.now + max(deferred.retry_after_s, 0.001), ask)
                return
            # A LocalRateLimiter reserves a slot and sleeps until it (the sleep is a no-op here): the
            # worker wakes at its slot, then is descheduled for the injected delay.
            leave_at = max(self.clock.now, permit.counted_at) + grant_to_send_delay(self.rng)
            self.at(leave_at, lambda: send(permit))

        def send(permit: Permit) -> None:
            trip = self.rng.uniform(0.0, LATENCY_MARGIN_S)
            if permit.leave():
                self.gateway.arrivals.append(self.clock.now + trip)
                self.at(self.clock.now + trip + ANSWER_S, ask)
            else:
                self.late_permits += 1
                self.gateway.void_arrivals.append(self.clock.now + trip)
                ask()

        self.at(self.clock.now + self.rng.uniform(0.0, 0.01), ask)

    def run(self) -> Gateway:
        while self._events:
            event = heapq.heappop(self._events)
            self.clock.now = event.at
            event.run()
        return self.gateway


def _assert_rule_held_and_mattered(simulation: Simulation, gateway: Gateway, least_calls: int) -> None:
    assert most_in_any_window(gateway.arrivals, WINDOW_S) <= CALLS
    # The budget was in use, not starved by the late permits.
    assert len(gateway.arrivals) >= least_calls
    # Without the re-check, the late permits' calls would have broken the rule.
    assert simulation.late_permits > 0
    assert most_in_any_window(gateway.arrivals + gateway.void_arrivals, WINDOW_S) > CALLS


def test_local_limiter_keeps_the_rule_when_calls_leave_late() -> None:
    clock = VirtualClock()
    limiter = LocalRateLimiter(CALLS, WINDOW_S, LATENCY_MARGIN_S, send_allowance_s=SEND_ALLOWANCE_S,
                               clock=clock, sleep=lambda seconds: None)
    simulation = Simulation(clock, seed=18)
    for _ in range(8):
        simulation.worker(limiter, max_wait_s=math.inf)
    gateway = simulation.run()
    _assert_rule_held_and_mattered(simulation, gateway, least_calls=int(0.8 * CALLS * SIMULATED_S / WINDOW_S))


def test_void_permits_give_their_slot_back_to_the_local_limiter() -> None:
    clock = VirtualClock()
    limiter = LocalRateLimiter(2, WINDOW_S, 0.0, send_allowance_s=SEND_ALLOWANCE_S, clock=clock)
    late = limiter.acquire(0)
    limiter.acquire(0).leave()
    clock.now += SEND_ALLOWANCE_S + 0.001
    assert not late.leave()
    assert late.delay_s is not None and late.delay_s > SEND_ALLOWANCE_S
    # The void call never reached the gateway: its room is free at once.
    assert limiter.acquire(0).leave()


def test_a_withdrawn_permit_gives_its_slot_back_and_cannot_be_used() -> None:
    clock = VirtualClock()
    limiter = LocalRateLimiter(1, WINDOW_S, 0.0, send_allowance_s=SEND_ALLOWANCE_S, clock=clock)
    withdrawn = limiter.acquire(0)
    withdrawn.withdraw()
    withdrawn.withdraw()  # once is enough; again changes nothing
    assert limiter.acquire(0).leave()
    with pytest.raises(RuntimeError):  # a withdrawn permit must not be sent
        withdrawn.leave()


class ExactServiceClock:
    """The service clock of simulated instances: virtual time, known exactly (the Date headers are
    real time, which virtual time does not follow; ServiceClock has tests of its own)."""

    def __init__(self, clock: VirtualClock) -> None:
        self._clock = clock

    def observe(self, sent: float, received: float, service_date: float) -> None:
        pass

    def now(self) -> tuple[float, float, float]:
        return self._clock.now, self._clock.now, 0.0


def test_table_limiter_instances_keep_the_rule_when_calls_leave_late(storage_connection_string: str) -> None:
    clock = VirtualClock()
    key = f"http://sandbox.test/webportalapi/v3|{uuid.uuid4().hex}"
    simulation = Simulation(clock, seed=20)
    for _ in range(3):  # three instances of the app, three workers each
        instance = TableRateLimiter(storage_connection_string, key, CALLS, WINDOW_S, lease_size=3,
                                    lease_validity_s=0.1, latency_margin_s=LATENCY_MARGIN_S,
                                    send_allowance_s=SEND_ALLOWANCE_S, clock_skew_s=0.0, clock=clock,
                                    sleep=lambda seconds: None)
        instance.service_clock = ExactServiceClock(clock)  # type: ignore[assignment]
        for _ in range(3):
            simulation.worker(instance, max_wait_s=0.0)
    gateway = simulation.run()
    # The horizon (window + validity + allowance + margin) is 1.17 s: about 85 % of the budget at most.
    _assert_rule_held_and_mattered(simulation, gateway, least_calls=int(0.6 * CALLS * SIMULATED_S / WINDOW_S))
