"""Callbacks, deferred status reads and link requests: the services against Azurite and the sandbox.

The sandbox's real callbacks are captured by a recorder and replayed into the service, so duplicates
and reordering are exact, and the sandbox's call counter shows what each step cost.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from shared.pipeline.callbacks import (
    CallbackClaim,
    Outcome,
    claim_from_request,
    handle_callback,
    handle_link_request,
    handle_status_refresh,
)
from shared.storage import names
from shared.storage.status import PackageStatus
from shared.storage.store import Store
from tests.pipeline.callback_world import (
    Captured,
    Recorder,
    act,
    actors,
    calls_by_operation,
    client_for,
    exhausted_limiter,
    insert_row,
    instant_package,
    new_ref,
    pending_row,
    queued,
    recorder_fixture,
    settings_for,
    store_for,
    token_for,
    wait_until,
)


@pytest.fixture()
def store(storage_connection_string: str) -> Store:
    return store_for(storage_connection_string)


@pytest.fixture()
def recorder() -> Iterator[Recorder]:
    yield from recorder_fixture()


def replay(store, client, settings, item: Captured):
    return handle_callback(store, client, settings, item.ref, item.query.get("token"),
                           claim_from_request(item.query, item.body))


def test_a_bad_or_missing_token_is_401_and_an_unknown_ref_404(store, sandbox, storage_connection_string) -> None:
    settings = settings_for(sandbox, storage_connection_string)
    client = client_for(sandbox)
    ref = new_ref()
    insert_row(store, ref, "pkg")
    for token in (None, "", "0" * 64, token_for(ref + "x")):
        assert handle_callback(store, client, settings, ref, token, CallbackClaim()).status_code == 401
        assert handle_link_request(store, client, settings, ref, token, b"{}").status_code == 401
    unknown = new_ref()
    assert handle_callback(store, client, settings, unknown, token_for(unknown), CallbackClaim()).status_code == 404
    assert handle_callback(store, client, settings, "../x", token_for("../x"), CallbackClaim()).status_code == 404
    row = store.packages.get(ref)
    assert row is not None and row.callback_count == 0  # refused callbacks leave no trace on the row


def test_an_auto_signed_package_costs_one_status_read_however_its_callbacks_arrive(
        store, sandbox, recorder, storage_connection_string) -> None:
    settings = settings_for(sandbox, storage_connection_string)
    client = client_for(sandbox)
    ref = new_ref()
    sandbox.admin("POST", "config", json={"auto_sign": True, "auto_sign_delay": 0, "callback_duplicate_rate": 1.0})
    package_id = instant_package(client, ref, ["ann@example.com"], recorder.callback_url(ref))
    insert_row(store, ref, package_id, signers=[{"email": "ann@example.com", "type": "Signer"}])
    # Both copies of the duplicated Finished callback (the sandbox sends them one after the other).
    captured = wait_until(lambda: sum(1 for c in recorder.for_ref(ref) if c.query["packageStatus"] == "Finished") >= 2
                          and recorder.for_ref(ref))
    assert sum(1 for c in captured if c.query["packageStatus"] == "Finished") == 2  # duplicated by the sandbox
    before = calls_by_operation(sandbox).get("GetPackageStatus", 0)

    # Newest first, then everything again in arrival order: duplicates and stale ones.
    replies = [replay(store, client, settings, item) for item in [*reversed(captured), *captured]]

    finished_replies = [r for r in replies if r.outcome is Outcome.APPLIED]
    assert len(finished_replies) == 1 and finished_replies[0].data["status"] == "Finished"
    assert calls_by_operation(sandbox).get("GetPackageStatus", 0) - before == 1
    row = store.packages.get(ref)
    assert row is not None and row.status is PackageStatus.FINISHED
    assert 1 <= row.callback_count <= len(replies) and row.last_callback_at is not None
    # Every callback is in the history; the row counts only those that had something to record on it.
    history = [e for e in store.events.history(ref) if e["kind"] == "callback_received"]
    assert len(history) == len(replies)
    assert row.signers[0]["status"] == "Finished" and row.signers[0]["completed_at"]
    assert len(queued(store, names.ARCHIVE_REQUESTS_QUEUE, ref)) == 1

    # The status-refresh queued by the non-final callbacks finds the row final and spends nothing.
    messages = queued(store, names.STATUS_REFRESH_QUEUE, ref, wait_s=1.2)
    assert len(messages) <= 1
    for message in messages:
        assert handle_status_refresh(store, client, settings, message).outcome is Outcome.ALREADY_FINAL
    assert calls_by_operation(sandbox).get("GetPackageStatus", 0) - before == 1


def test_non_final_callbacks_share_one_deferred_read(store, sandbox, recorder, storage_connection_string) -> None:
    settings = settings_for(sandbox, storage_connection_string)
    client = client_for(sandbox)
    ref, package_id = pending_row(store, client, recorder, ["ann@example.com", "bob@example.com"])
    act(sandbox, package_id, actors(sandbox, package_id)[0]["id"], "sign")
    captured = wait_until(lambda: [c for c in recorder.for_ref(ref) if c.query["packageStatus"] == "Pending"])
    before = calls_by_operation(sandbox).get("GetPackageStatus", 0)

    replies = [replay(store, client, settings, captured[0]) for _ in range(3)]

    assert [r.outcome for r in replies] == [Outcome.COALESCED] * 3
    assert [r.data["refreshScheduled"] for r in replies] == [True, False, False]
    assert calls_by_operation(sandbox).get("GetPackageStatus", 0) == before  # nothing read yet
    messages = queued(store, names.STATUS_REFRESH_QUEUE, ref, wait_s=1.2)
    assert messages == [{"packageRef": ref, "reason": "callback"}]
    assert handle_status_refresh(store, client, settings, messages[0]).outcome is Outcome.APPLIED
    # A second copy of the message (at-least-once delivery) finds nothing new to read.
    assert handle_status_refresh(store, client, settings, messages[0]).outcome is Outcome.SKIPPED
    assert calls_by_operation(sandbox).get("GetPackageStatus", 0) - before == 1
    row = store.packages.get(ref)
    assert row is not None and row.status is PackageStatus.PENDING
    assert [s["status"] for s in row.signers] == ["Finished", "Available"]


def test_without_a_rate_token_the_callback_is_recorded_and_the_read_queued(
        store, sandbox, recorder, storage_connection_string) -> None:
    settings = settings_for(sandbox, storage_connection_string)
    ref, package_id = pending_row(store, client_for(sandbox), recorder, ["ann@example.com"])
    act(sandbox, package_id, actors(sandbox, package_id)[0]["id"], "sign")
    final = wait_until(lambda: [c for c in recorder.for_ref(ref) if c.query["packageStatus"] == "Finished"])[0]
    starved = client_for(sandbox, exhausted_limiter(window_s=1.0))

    reply = replay(store, starved, settings, final)

    assert reply.outcome is Outcome.DEFERRED and reply.status_code == 200
    row = store.packages.get(ref)
    assert row is not None and row.status is PackageStatus.PENDING and row.callback_count == 1
    assert row.status_refresh_due_at is not None
    messages = queued(store, names.STATUS_REFRESH_QUEUE, ref, wait_s=1.2)
    assert messages == [{"reason": "callback", "packageRef": ref}]
    assert handle_status_refresh(store, client_for(sandbox), settings, messages[0]).outcome is Outcome.APPLIED
    row = store.packages.get(ref)
    assert row is not None and row.status is PackageStatus.FINISHED
    assert len(queued(store, names.ARCHIVE_REQUESTS_QUEUE, ref)) == 1


def test_the_refresh_worker_puts_itself_back_when_no_token_is_at_hand(
        store, sandbox, storage_connection_string) -> None:
    settings = settings_for(sandbox, storage_connection_string, QUEUE_RATE_WAIT_S="0")
    ref = new_ref()
    package_id = instant_package(client_for(sandbox), ref, ["ann@example.com"])
    insert_row(store, ref, package_id)
    reply = handle_status_refresh(store, client_for(sandbox, exhausted_limiter(window_s=1.0)), settings,
                                  {"packageRef": ref, "reason": "callback"})
    assert reply.outcome is Outcome.DEFERRED
    assert queued(store, names.STATUS_REFRESH_QUEUE, ref, wait_s=1.2) == [{"reason": "callback", "packageRef": ref}]


def test_a_rejection_is_recorded_with_its_reason(store, sandbox, recorder, storage_connection_string) -> None:
    settings = settings_for(sandbox, storage_connection_string)
    client = client_for(sandbox)
    ref, package_id = pending_row(store, client, recorder, ["ann@example.com"])
    act(sandbox, package_id, actors(sandbox, package_id)[0]["id"], "reject", reason="Wrong IBAN")
    final = wait_until(lambda: [c for c in recorder.for_ref(ref) if c.query["packageStatus"] == "Rejected"])[0]

    assert replay(store, client, settings, final).outcome is Outcome.APPLIED
    row = store.packages.get(ref)
    assert row is not None and row.status is PackageStatus.REJECTED
    assert row.final_reason is not None and row.final_reason.endswith("Wrong IBAN")
    assert queued(store, names.ARCHIVE_REQUESTS_QUEUE, ref) == []


def test_a_link_request_fetches_a_fresh_action_url(store, sandbox, recorder, storage_connection_string) -> None:
    settings = settings_for(sandbox, storage_connection_string)
    client = client_for(sandbox)
    ref, package_id = pending_row(store, client, recorder, ["ann@example.com"])
    actor_id = actors(sandbox, package_id)[0]["id"]
    act(sandbox, package_id, actor_id, "request-link")
    request = wait_until(lambda: recorder.for_ref(ref, kind="notify"))[0]

    reply = handle_link_request(store, client, settings, ref, request.query.get("token"), request.body)

    assert reply.outcome is Outcome.APPLIED
    history = [event["kind"] for event in store.events.history(ref)]
    assert "link_requested" in history and "link_published" in history


def test_the_http_function_answers_problem_json_for_a_bad_token_and_200_for_a_final_row(
        store, sandbox, storage_connection_string, monkeypatch) -> None:
    import azure.functions as func

    from functions import callbacks

    for key, value in {"DocumentStorage": storage_connection_string, "CALLBACK_SECRETS": "callback-secret-for-tests",
                       "CONNECTIVE_BASE_URL": sandbox.base_url, "CONNECTIVE_USERNAME": sandbox.user,
                       "CONNECTIVE_PASSWORD": sandbox.password}.items():
        monkeypatch.setenv(key, value)
    ref = new_ref()
    insert_row(store, ref, "pkg", status=PackageStatus.ARCHIVED)
    handler = callbacks.connective_callback.build().get_user_function()
    context = type("Context", (), {"invocation_id": "inv-1", "function_name": "connective_callback"})()

    def call(token: str) -> func.HttpResponse:
        request = func.HttpRequest(method="POST", url=f"/api/callbacks/connective/{ref}", params={"token": token,
                                   "packageStatus": "Finished"}, route_params={"packageRef": ref}, body=b"{}")
        return handler(request, context)

    refused = call("nope")
    assert refused.status_code == 401 and refused.mimetype == "application/problem+json"
    accepted = call(token_for(ref))
    assert accepted.status_code == 200 and b"already-final" in accepted.get_body()


def test_a_final_callback_without_a_token_joins_the_read_already_queued(
        store, sandbox, recorder, storage_connection_string) -> None:
    settings = settings_for(sandbox, storage_connection_string, STATUS_REFRESH_DELAY_S="1")
    client = client_for(sandbox)
    ref, package_id = pending_row(store, client, recorder, ["ann@example.com"])
    act(sandbox, package_id, actors(sandbox, package_id)[0]["id"], "sign")
    captured = wait_until(lambda: [c for c in recorder.for_ref(ref) if c.query["packageStatus"] == "Finished"]
                          and recorder.for_ref(ref))
    pending = next(c for c in captured if c.query["packageStatus"] != "Finished")
    final = next(c for c in captured if c.query["packageStatus"] == "Finished")
    before = calls_by_operation(sandbox).get("GetPackageStatus", 0)

    assert replay(store, client, settings, pending).outcome is Outcome.COALESCED  # a read queued for 1 s on
    starved = client_for(sandbox, exhausted_limiter(window_s=1.0))
    assert replay(store, starved, settings, final).outcome is Outcome.DEFERRED  # joins it: no second message

    messages = queued(store, names.STATUS_REFRESH_QUEUE, ref, wait_s=1.5)
    assert messages == [{"packageRef": ref, "reason": "callback"}]
    assert handle_status_refresh(store, client, settings, messages[0]).outcome is Outcome.APPLIED
    assert calls_by_operation(sandbox).get("GetPackageStatus", 0) - before == 1
    row = store.packages.get(ref)
    assert row is not None and row.status is PackageStatus.FINISHED


def test_a_row_just_read_as_finished_is_left_to_its_reader_to_archive(
        store, sandbox, storage_connection_string) -> None:
    settings = settings_for(sandbox, storage_connection_string)
    client = client_for(sandbox)
    just_now, long_ago = new_ref(), new_ref()
    now = datetime.now(UTC)
    insert_row(store, just_now, "p-1", PackageStatus.FINISHED, last_status_read_at=now)
    insert_row(store, long_ago, "p-2", PackageStatus.FINISHED, last_status_read_at=now - timedelta(minutes=5))
    for ref in (just_now, long_ago):
        reply = handle_callback(store, client, settings, ref, token_for(ref), CallbackClaim("Finished"))
        assert reply.outcome is Outcome.ALREADY_FINAL
    # The reader of `just_now` sends its own request right after its write: a second one would archive twice.
    rows = {ref: store.packages.get(ref) for ref in (just_now, long_ago)}
    assert rows[just_now] is not None and rows[just_now].archive_requested_at is None
    assert rows[long_ago] is not None and rows[long_ago].archive_requested_at is not None  # its request was lost
    assert [e["kind"] for e in store.events.history(just_now)] == ["callback_received"]
    assert calls_by_operation(sandbox).get("GetPackageStatus", 0) == 0
