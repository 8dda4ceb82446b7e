"""Callbacks (retries and chaos knobs), the per-user sliding-window throttle, injected faults and stats."""

from __future__ import annotations

import time
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from devtools.sandbox.throttle import SlidingWindowThrottle
from tests.conftest import SandboxHandle, start_sandbox, stop_process
from tests.sandbox.conftest import Api, CallbackReceiver, actor_ids, wait_until


def callback_url(receiver: CallbackReceiver) -> str:
    return f"{receiver.url}/api/callbacks/connective/REF-9?token=abc&code=xyz"


def test_callbacks_after_every_actor_action_and_status_change(api: Api, receiver: CallbackReceiver) -> None:
    package = api.pending_package(CallBackUrl=callback_url(receiver), ExternalPackageReference="REF-9")
    package_id = package["PackageId"]
    for actor_id in actor_ids(package):
        api.act(package_id, actor_id, "sign")
    received = receiver.wait_for(4)
    query = parse_qs(urlsplit(received[0].path).query)
    assert urlsplit(received[0].path).path == "/api/callbacks/connective/REF-9"
    assert query["token"] == ["abc"] and query["code"] == ["xyz"] and query["packageId"] == [package_id]
    bodies = [r.body for r in received]
    assert [(b["PackageStatus"], b.get("ActorStatus")) for b in bodies] == [
        ("Pending", None), ("Pending", "Finished"), ("Pending", "Finished"), ("Finished", None)]
    assert all(b["ExternalPackageReference"] == "REF-9" and b["PackageId"] == package_id for b in bodies)
    assert bodies[1]["ActorId"] == actor_ids(package)[0]
    assert parse_qs(urlsplit(received[-1].path).query)["packageStatus"] == ["Finished"]
    assert wait_until(lambda: api.admin("GET", "stats")["callbacks"]["sent"] == 4)


def test_failed_callbacks_are_retried_with_backoff(api: Api, receiver: CallbackReceiver) -> None:
    api.config(callback_backoff=0.05, callback_max_attempts=4)
    receiver.codes = [500, 503]
    api.pending_package(CallBackUrl=callback_url(receiver))
    first = receiver.wait_for(1)[0]
    assert first.body["PackageStatus"] == "Pending"
    stats = api.admin("GET", "stats")["callbacks"]
    assert stats["failed_attempts"] == 2 and stats["sent"] == 1


def test_callbacks_give_up_after_the_last_attempt(api: Api) -> None:
    api.config(callback_backoff=0.01, callback_max_attempts=2)
    api.pending_package(CallBackUrl="http://127.0.0.1:9/unreachable")
    wait_until(lambda: api.admin("GET", "stats")["callbacks"]["failed"] == 1)
    assert api.admin("GET", "stats")["callbacks"]["failed_attempts"] == 2


def test_callbacks_dropped_duplicated_delayed_and_reordered(api: Api, receiver: CallbackReceiver) -> None:
    api.config(callback_drop_rate=1.0)
    api.pending_package(CallBackUrl=callback_url(receiver))
    assert api.admin("GET", "stats")["callbacks"]["dropped"] == 1
    api.config(callback_drop_rate=0.0, callback_duplicate_rate=1.0)
    api.pending_package(CallBackUrl=callback_url(receiver))
    assert len(receiver.wait_for(2)) == 2 and receiver.received[0].body == receiver.received[1].body
    api.config(callback_duplicate_rate=0.0, callback_delay=0.3)
    started = time.monotonic()
    api.pending_package(CallBackUrl=callback_url(receiver))
    assert receiver.wait_for(3)[2].at - started >= 0.3
    api.config(callback_delay=0.0, callback_reorder=True)
    package = api.pending_package(CallBackUrl=callback_url(receiver))  # callback "Pending" is held
    api.act(package["PackageId"], actor_ids(package)[0], "sign")  # its successor goes out first
    received = receiver.wait_for(5)
    assert [r.body.get("ActorStatus") for r in received[3:5]] == ["Finished", None]
    assert api.admin("GET", "stats")["callbacks"]["reordered"] == 1


def test_notification_callback_on_new_link_request(api: Api, receiver: CallbackReceiver) -> None:
    package = api.pending_package(NotificationCallBackUrl=f"{receiver.url}/notify")
    holder = package["Stakeholders"][0]
    page = requests.post(holder["Actors"][0]["ActionUrl"] + "/request-link", timeout=5)
    assert page.status_code == 200
    received = receiver.wait_for(1)[0]
    assert received.path == "/notify"
    assert received.body == {"PackageId": package["PackageId"], "ActorId": holder["Actors"][0]["ActorId"],
                             "StakeholderId": holder["StakeholderId"], "EmailAddress": "anna@example.com"}


# ----- throttle -----------------------------------------------------------------------------------

TIGHT_WINDOW_S = 3


@pytest.fixture()
def tight_sandbox() -> Iterator[SandboxHandle]:
    # A window far longer than a loaded machine needs for a handful of calls, so they all fall in it.
    handle = start_sandbox("--rate-calls", "5", "--rate-window", str(TIGHT_WINDOW_S), "--user", "other:other-pw")
    try:
        yield handle
    finally:
        stop_process(handle.process)


def test_sliding_window_throttle_per_user(tight_sandbox: SandboxHandle) -> None:
    api = Api(tight_sandbox)
    url = "/packages"
    codes = [api.call("GET", url).status_code for _ in range(5)]
    assert codes == [200] * 5
    throttled = api.call("GET", url)
    assert throttled.status_code == 429
    retry_after = int(throttled.headers["Retry-After"])  # whole seconds, rounded up
    assert 1 <= retry_after <= TIGHT_WINDOW_S
    assert throttled.json()["ErrorCode"] == "Request.Throttled"
    other = requests.get(api.base + url, auth=("other", "other-pw"), timeout=5)
    assert other.status_code == 200  # each user has a budget of its own
    assert requests.get(f"{tight_sandbox.root_url}/_sandbox/stats", timeout=5).status_code == 200  # never throttled
    time.sleep(retry_after)  # the wait the sandbox announced: the oldest call has left the window
    assert api.call("GET", url).status_code == 200
    stats = tight_sandbox.admin("GET", "stats").json()
    assert stats["throttled_by_user"] == {"tester": 1}
    assert stats["calls_by_user"] == {"tester": 6, "other": 1}


def test_stats_give_the_acceptance_times_of_each_users_calls_on_request(tight_sandbox: SandboxHandle) -> None:
    api = Api(tight_sandbox)
    before = time.time()
    codes = [api.call("GET", "/packages").status_code for _ in range(6)]
    after = time.time()
    assert codes == [200] * 5 + [429]
    assert "accepted_times_by_user" not in tight_sandbox.admin("GET", "stats").json()
    times = tight_sandbox.admin("GET", "stats?times=1").json()["accepted_times_by_user"]
    assert list(times) == ["tester"]  # the throttled call is not among them
    assert len(times["tester"]) == 5
    assert times["tester"] == sorted(times["tester"]) and before <= times["tester"][0] <= times["tester"][-1] <= after
    tight_sandbox.reset()
    assert tight_sandbox.admin("GET", "stats?times=1").json()["accepted_times_by_user"] == {}


def test_throttle_is_a_sliding_window_not_a_fixed_one() -> None:
    # On a clock the test moves, so a loaded machine cannot stretch the gaps between the calls.
    now = [100.0]
    throttle = SlidingWindowThrottle(clock=lambda: now[0])
    for _ in range(2):
        assert throttle.try_acquire("tester", 4, 0.6) is None
    now[0] += 0.35
    for _ in range(2):
        assert throttle.try_acquire("tester", 4, 0.6) is None
    assert throttle.try_acquire("tester", 4, 0.6) == pytest.approx(0.25)  # a fixed window would have reset
    now[0] += 0.3  # the first two left the window; the last two are still in it
    assert [throttle.try_acquire("tester", 4, 0.6) for _ in range(3)] == [None, None, pytest.approx(0.3)]


# ----- faults -------------------------------------------------------------------------------------

def test_injected_500_and_503_do_not_run_the_operation(api: Api) -> None:
    api.config(fault_500_rate=1.0)
    response = api.call("POST", "/packages", json={"PackageName": "x", "Initiator": "a@example.com"})
    assert response.status_code == 500
    api.config(fault_500_rate=0.0, fault_503_rate=1.0)
    response = api.call("POST", "/packages", json={"PackageName": "x", "Initiator": "a@example.com"})
    assert response.status_code == 503 and response.headers["Retry-After"] == "1"
    api.config(fault_503_rate=0.0)
    assert api.call("GET", "/packages").json()["Total"] == 0
    assert api.admin("GET", "stats")["faults"] == {"500": 1, "503": 1, "hang": 0, "latency": 0}


def test_a_hanging_create_is_applied_but_answered_too_late(api: Api) -> None:
    api.config(hang_rate=1.0, hang_seconds=1.5)
    with pytest.raises(requests.ReadTimeout):
        api.call("POST", "/packages", json={"PackageName": "x", "Initiator": "a@example.com",
                                            "ExternalPackageReference": "AMBIGUOUS-1"}, timeout=0.4)
    api.config(hang_rate=0.0)
    listed = Api(api.handle).call("GET", "/packages").json()
    assert [item["ExternalPackageReference"] for item in listed["Items"]] == ["AMBIGUOUS-1"]


def test_added_latency(api: Api) -> None:
    api.config(latency_ms=150)
    started = time.monotonic()
    assert api.call("GET", "/packages").status_code == 200
    assert time.monotonic() - started >= 0.15


def test_config_rejects_unknown_or_bad_knobs(api: Api) -> None:
    for bad in ({"no_such_knob": 1}, {"fault_500_rate": 2}, {"auto_sign": "maybe"}, {"error_format": "xml"}):
        response = requests.post(f"{api.handle.root_url}/_sandbox/config", json=bad, timeout=5)
        assert response.status_code == 400, bad
    assert api.admin("GET", "config")["fault_500_rate"] == 0


def test_stats_count_calls_per_operation_package_and_reference(api: Api) -> None:
    package = api.finished_package(ExternalPackageReference="INPUT-42")
    package_id = package["PackageId"]
    api.call("GET", f"/packages/{package_id}/download")
    api.call("DELETE", f"/packages/{package_id}")
    stats = api.admin("GET", "stats")
    assert stats["calls_by_operation"]["CreatePackage"] == 1
    assert stats["calls_by_operation"]["DownloadPackage"] == 1
    # create, add document, process, status, download, delete
    assert stats["calls_by_package"][package_id] == 6
    assert stats["calls_by_external_reference"]["INPUT-42"] == 6
    api.handle.reset()
    assert api.admin("GET", "stats")["calls_total"] == 0
