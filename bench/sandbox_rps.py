"""Get Package Status throughput of the sandbox, so other benchmarks know it is not their bottleneck.

Goal: at least 500 requests/s with a few concurrent keep-alive clients.
"""

from __future__ import annotations

import threading
import time

import requests

from tests.conftest import start_sandbox, stop_process

GOAL_RPS = 500.0
THREADS = 4
DURATION_S = 5.0


def _ready_package(root_url: str, auth: tuple[str, str]) -> str:
    from tests.sandbox.conftest import b64, signable_pdf

    base = f"{root_url}/webportalapi/v3"
    package_id = requests.post(f"{base}/packages", json={"PackageName": "bench", "Initiator": "b@example.com"},
                               auth=auth, timeout=10).json()["PackageId"]
    requests.post(f"{base}/packages/{package_id}/documents", auth=auth, timeout=10, json={
        "DocumentName": "bench", "Document": b64(signable_pdf()),
        "SigningFields": [{"PageNumber": 1, "Left": "72", "Top": "72", "Width": "150", "Height": "50"}]})
    return package_id


def run() -> dict[str, object]:
    handle = start_sandbox("--rate-calls", "0")
    try:
        package_id = _ready_package(handle.root_url, handle.auth)
        url = f"{handle.base_url}/packages/{package_id}/status"
        counts = [0] * THREADS
        errors = [0] * THREADS
        stop_at = time.monotonic() + DURATION_S

        def client(index: int) -> None:
            with requests.Session() as session:
                session.auth = handle.auth
                while time.monotonic() < stop_at:
                    if session.get(url, timeout=10).status_code == 200:
                        counts[index] += 1
                    else:
                        errors[index] += 1

        print(f"sandbox_rps: {THREADS} keep-alive clients on Get Package Status for {DURATION_S:.0f} s")
        started = time.monotonic()
        threads = [threading.Thread(target=client, args=(n,)) for n in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
    finally:
        stop_process(handle.process)
    rps = sum(counts) / elapsed
    return {"sandbox.status_rps": round(rps, 1), "sandbox.status_errors": sum(errors),
            "sandbox.status_rps_goal_ratio": round(rps / GOAL_RPS, 2)}


if __name__ == "__main__":
    results = run()
    for key, value in results.items():
        print(f"{key}: {value}")
    print(f"goal: >= {GOAL_RPS:.0f} requests/s -> ratio {results['sandbox.status_rps_goal_ratio']}")
