"""One process taking rate tokens as fast as it can from a shared TableRateLimiter.

Run as `python -m tests.limiter.hammer '<json options>'`; prints a JSON list of the wall-clock
times (time.time(), comparable across processes on one machine) at which it was granted a token.
Options: connection_string, connection_key, calls, window_s, lease_validity_s, start_at (wall
time to begin, so all processes start together), duration_s, clock_offset_s (added to this
process's clock), clock_jump_s and clock_jump_after_s (a forward step of that clock mid-run).
"""

from __future__ import annotations

import json
import sys
import time

from shared.connective.ratelimit import RateLimitDeferred
from shared.storage.ratelimit import TableRateLimiter


def skewed_clock(offset_s: float, jump_s: float, jump_at: float) -> object:
    def clock() -> float:
        now = time.monotonic()
        return now + offset_s + (jump_s if time.time() >= jump_at else 0.0)

    return clock


def main(options: dict[str, float | str]) -> list[float]:
    start_at = float(options["start_at"])
    clock = skewed_clock(float(options.get("clock_offset_s", 0.0)), float(options.get("clock_jump_s", 0.0)),
                         start_at + float(options.get("clock_jump_after_s", 1e9)))
    limiter = TableRateLimiter(
        str(options["connection_string"]), str(options["connection_key"]),
        int(options["calls"]), float(options["window_s"]), lease_size=int(options.get("lease_size", 5)),
        lease_validity_s=float(options["lease_validity_s"]), latency_margin_s=float(options["latency_margin_s"]),
        clock_skew_s=float(options.get("clock_skew_s", 0.02)), clock=clock,  # type: ignore[arg-type]
    )
    time.sleep(max(0.0, start_at - time.time()))
    end_at = start_at + float(options["duration_s"])
    grants: list[float] = []
    while True:
        remaining = end_at - time.time()
        if remaining <= 0:
            break
        try:
            limiter.acquire(max_wait_s=remaining)
        except RateLimitDeferred:
            break
        grants.append(time.time())
    return grants


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))))
