"""Status reads that overlap: a final callback (or its duplicate) arriving while another read is in flight.

The interleaving is made, not waited for: the reader's Get Package Status answer is held (after the
sandbox answered it) until the test has delivered the callbacks that matter, so the read that used to
be spent twice is counted exactly, on the sandbox's call counter.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest

from shared.connective.client import ConnectiveClient
from shared.pipeline import callbacks, status_sync
from shared.pipeline.callbacks import CallbackClaim, Outcome, Reply, handle_callback, handle_status_refresh
from shared.storage import names
from shared.storage.status import PackageStatus
from shared.storage.store import Store
from tests.pipeline.callback_world import (
    act,
    actors,
    calls_by_operation,
    client_for,
    insert_row,
    instant_package,
    new_ref,
    queued,
    settings_for,
    store_for,
    token_for,
)

HELD_READER = "held-status-reader"


class HeldAnswer:
    """Holds the Get Package Status answer of the thread named HELD_READER until `release()`."""

    def __init__(self) -> None:
        self.answered = threading.Event()
        self._release = threading.Event()

    def wrap(self, original: Callable[..., Any]) -> Callable[..., Any]:
        def get_package_status(client: ConnectiveClient, *args: Any, **kwargs: Any) -> Any:
            answer = original(client, *args, **kwargs)
            if threading.current_thread().name == HELD_READER:
                self.answered.set()
                assert self._release.wait(30), "the held answer was never released"
            return answer
        return get_package_status

    def release(self) -> None:
        self._release.set()


@pytest.fixture()
def held(monkeypatch: pytest.MonkeyPatch) -> Iterator[HeldAnswer]:
    holder = HeldAnswer()
    monkeypatch.setattr(ConnectiveClient, "get_package_status", holder.wrap(ConnectiveClient.get_package_status))
    yield holder
    holder.release()


@pytest.fixture()
def store(storage_connection_string: str) -> Store:
    return store_for(storage_connection_string)


def reads(sandbox: Any) -> int:
    return calls_by_operation(sandbox).get("GetPackageStatus", 0)


def run_held(work: Callable[[], Reply]) -> tuple[threading.Thread, list[Reply]]:
    replies: list[Reply] = []
    thread = threading.Thread(target=lambda: replies.append(work()), name=HELD_READER, daemon=True)
    thread.start()
    return thread, replies


def signed_after_a_queued_refresh(store: Store, sandbox: Any, client: ConnectiveClient, settings: Any,
                                  sign_now: bool = True) -> tuple[str, str, str, dict[str, Any], Callable[[], None]]:
    """A one-signer package whose non-final callback queued a refresh (taken off the queue, returned).
    Returns ref, package id, callback token, the refresh message and the signing (done when `sign_now`)."""
    ref = new_ref()
    package_id = instant_package(client, ref, ["ann@example.com"])
    insert_row(store, ref, package_id, signers=[{"email": "ann@example.com", "type": "Signer"}])
    token = token_for(ref)
    assert handle_callback(store, client, settings, ref, token, CallbackClaim("Pending")).outcome is Outcome.COALESCED
    [message] = queued(store, names.STATUS_REFRESH_QUEUE, ref)

    def sign() -> None:
        act(sandbox, package_id, actors(sandbox, package_id)[0]["id"], "sign")

    if sign_now:
        sign()
    return ref, package_id, token, message, sign


@pytest.mark.parametrize("answer_before_signing", [True, False], ids=["answer-stale", "answer-final"])
def test_a_final_callback_and_its_duplicate_during_a_refresh_read_cost_no_extra_read(
        store, sandbox, held, storage_connection_string, answer_before_signing: bool) -> None:
    """The refresh of a non-final callback is reading when the last signer signs, and the Finished
    callback arrives twice meanwhile. Neither copy reads in parallel: they join a queued read. That read
    happens only when the refresh's answer was taken before the signing (it cannot cover what came after,
    so it must not hide it); when that answer already says Finished, nothing more is read."""
    settings = settings_for(sandbox, storage_connection_string, STATUS_REFRESH_DELAY_S="0")
    client = client_for(sandbox)
    before = reads(sandbox)
    # A non-final callback queued a refresh; the refresh starts reading.
    ref, package_id, token, message, sign = signed_after_a_queued_refresh(
        store, sandbox, client, settings, sign_now=not answer_before_signing)
    reader, reader_replies = run_held(lambda: handle_status_refresh(store, client, settings, message))
    assert held.answered.wait(30)
    if answer_before_signing:
        sign()

    # The Finished callback, twice, while the refresh's answer is on its way.
    finished = CallbackClaim("Finished", package_id)
    replies = [handle_callback(store, client, settings, ref, token, finished) for _ in range(2)]
    assert [r.outcome for r in replies] == [Outcome.COALESCED] * 2
    assert all(r.data.get("readInFlight") for r in replies)
    assert reads(sandbox) - before == 1  # only the refresh's read

    held.release()
    reader.join(30)
    assert reader_replies[0].outcome is Outcome.APPLIED
    # The read the Finished callbacks joined.
    for queued_read in queued(store, names.STATUS_REFRESH_QUEUE, ref):
        handle_status_refresh(store, client, settings, queued_read)

    row = store.packages.get(ref)
    assert row is not None and row.status is PackageStatus.FINISHED and row.status_read_until is None
    assert reads(sandbox) - before == (2 if answer_before_signing else 1)
    assert len(queued(store, names.ARCHIVE_REQUESTS_QUEUE, ref)) == 1


def test_a_refresh_arriving_while_a_final_callback_reads_waits_for_that_read(
        store, sandbox, held, storage_connection_string) -> None:
    """The other way round: the Finished callback is reading when the refresh of an earlier callback
    comes due. The refresh does not read beside it; queued again, it then finds the row final."""
    settings = settings_for(sandbox, storage_connection_string, STATUS_REFRESH_DELAY_S="0")
    client = client_for(sandbox)
    ref, package_id, token, message, _ = signed_after_a_queued_refresh(store, sandbox, client, settings)
    before = reads(sandbox)

    reader, reader_replies = run_held(
        lambda: handle_callback(store, client, settings, ref, token, CallbackClaim("Finished", package_id)))
    assert held.answered.wait(30)
    refresh = handle_status_refresh(store, client, settings, message)
    assert refresh.outcome is Outcome.DEFERRED and reads(sandbox) - before == 1

    held.release()
    reader.join(30)
    assert reader_replies[0].outcome is Outcome.APPLIED
    for queued_read in queued(store, names.STATUS_REFRESH_QUEUE, ref):
        assert handle_status_refresh(store, client, settings, queued_read).outcome is Outcome.ALREADY_FINAL
    assert reads(sandbox) - before == 1
    row = store.packages.get(ref)
    assert row is not None and row.status is PackageStatus.FINISHED


def test_a_reader_slow_to_note_its_archive_request_is_left_to_send_it_alone(
        store, sandbox, storage_connection_string, monkeypatch: pytest.MonkeyPatch) -> None:
    """The reader that moved the row to Finished has sent its archive request and is still writing the
    history (a loaded machine: longer than ARCHIVE_REQUEST_GRACE) when a refresh and a late Finished
    callback find the row Finished without a noted request. Neither asks again: two archive runs at
    once would fetch the package ZIP and its audit proof twice."""
    monkeypatch.setattr(callbacks, "ARCHIVE_REQUEST_GRACE", timedelta(0))  # the reader outlasts any grace
    reached, go_on = threading.Event(), threading.Event()
    record_history = status_sync._record_history

    def slow_history(*args: Any, **kwargs: Any) -> None:
        if threading.current_thread().name == HELD_READER:
            reached.set()
            assert go_on.wait(30), "the slow reader was never let go"
        record_history(*args, **kwargs)

    monkeypatch.setattr(status_sync, "_record_history", slow_history)
    settings = settings_for(sandbox, storage_connection_string, STATUS_REFRESH_DELAY_S="0")
    client = client_for(sandbox)
    ref, package_id, token, message, _ = signed_after_a_queued_refresh(store, sandbox, client, settings)

    finished = CallbackClaim("Finished", package_id)
    reader, reader_replies = run_held(lambda: handle_callback(store, client, settings, ref, token, finished))
    try:
        assert reached.wait(30)
        assert handle_status_refresh(store, client, settings, message).outcome is Outcome.ALREADY_FINAL
        assert handle_callback(store, client, settings, ref, token, finished).outcome is Outcome.ALREADY_FINAL
    finally:
        go_on.set()
        reader.join(30)
    assert reader_replies[0].outcome is Outcome.APPLIED
    assert len(queued(store, names.ARCHIVE_REQUESTS_QUEUE, ref)) == 1
    row = store.packages.get(ref)
    assert row is not None and row.archive_requested_at is not None and row.status_read_until is None
