"""One process taking rate tokens as fast as it can from a shared TableRateLimiter.

Run as `python -m tests.limiter.hammer '<json options>'`. Once its limiter is built it prints
`ready` and reads one line from stdin: the wall-clock time (time.time(), comparable across
processes on one machine) at which to begin, so every process starts together however long the
others took to import. It then prints a JSON object: `sent`, a list of [before, after] pairs (each
call was sent, its permit's `leave()` said yes, at some moment between the two; a descheduled
process widens a pair instead of misplacing the call), and `turned_away`, true when the shared
log had no room for it before the run's end. Options: connection_string, connection_key, calls,
window_s, lease_validity_s, duration_s, clock_offset_s (added to this process's clock),
clock_jump_s and clock_jump_after_s (a forward step of that clock mid-run, taken between two
acquisitions).
"""

from __future__ import annotations

import json
import sys
import time

from shared.connective.ratelimit import RateLimitDeferred, RateLimiterUnavailable
from shared.storage.ratelimit import TableRateLimiter


def main(options: dict[str, float | str]) -> dict[str, list[list[float]] | bool]:
    jump = {"at": float("inf"), "applied": 0.0}
    offset_s, jump_s = float(options.get("clock_offset_s", 0.0)), float(options.get("clock_jump_s", 0.0))

    def clock() -> float:
        return time.monotonic() + offset_s + jump["applied"]

    limiter = TableRateLimiter(
        str(options["connection_string"]), str(options["connection_key"]),
        int(options["calls"]), float(options["window_s"]), lease_size=int(options.get("lease_size", 5)),
        lease_validity_s=float(options["lease_validity_s"]), latency_margin_s=float(options["latency_margin_s"]),
        clock_skew_s=float(options.get("clock_skew_s", 0.02)), clock=clock,
    )
    print("ready", flush=True)
    start_at = float(sys.stdin.readline())
    jump["at"] = start_at + float(options.get("clock_jump_after_s", float("inf")))
    time.sleep(max(0.0, start_at - time.time()))
    end_at = start_at + float(options["duration_s"])
    sent: list[list[float]] = []
    turned_away = False
    while True:
        if time.time() >= jump["at"]:
            # The step lands between two acquisitions, never while a table request is in flight
            # (see "Clock steps" in shared/storage/ratelimit.py).
            jump["applied"] = jump_s
        remaining = end_at - time.time()
        if remaining <= 0:
            break
        try:
            permit = limiter.acquire(max_wait_s=remaining)
        except RateLimiterUnavailable:
            raise  # an unreachable table is not the others' leases: the process fails, and the test with it
        except RateLimitDeferred:
            turned_away = True
            break
        before = time.time()
        if permit.leave():  # as the client does right before writing a request; a late permit is void
            sent.append([before, time.time()])
    return {"sent": sent, "turned_away": turned_away}


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))))
