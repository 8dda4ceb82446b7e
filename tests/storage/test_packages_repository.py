"""The package table against Azurite: ETag-guarded changes and the forward-only status rule."""

from __future__ import annotations

import threading
import uuid

import pytest

from shared.storage.clients import StorageClients
from shared.storage.packages import PackageRecord, is_valid_package_ref
from shared.storage.status import PackageStatus, can_move
from shared.storage.store import Store


@pytest.fixture()
def store(storage_connection_string: str) -> Store:
    return Store(StorageClients(storage_connection_string))


def _ref() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


def test_insert_is_idempotent_and_round_trips(store: Store) -> None:
    record = PackageRecord(ref=_ref(), source="inbox", spec={"documents": [{"name": "a.pdf"}]},
                           signers=[{"email": "a@example.com"}])
    _, created = store.packages.insert(record)
    again, created_again = store.packages.insert(PackageRecord(ref=record.ref, source="other"))
    assert created and not created_again
    assert again.source == "inbox" and again.spec == {"documents": [{"name": "a.pdf"}]}
    assert again.signers == [{"email": "a@example.com"}]
    assert again.status is PackageStatus.RECEIVED and again.etag


def test_concurrent_mutations_are_all_applied(store: Store) -> None:
    ref = _ref()
    store.packages.insert(PackageRecord(ref=ref))

    def bump() -> None:
        for _ in range(5):
            store.packages.mutate(ref, lambda r: setattr(r, "callback_count", r.callback_count + 1) or True)

    threads = [threading.Thread(target=bump) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stored = store.packages.get(ref)
    assert stored is not None and stored.callback_count == 20


def test_status_never_moves_backwards() -> None:
    assert can_move(PackageStatus.PENDING, PackageStatus.FINISHED)
    assert not can_move(PackageStatus.FINISHED, PackageStatus.PENDING)
    assert not can_move(PackageStatus.ARCHIVED, PackageStatus.FINISHED)
    assert can_move(PackageStatus.EXPIRED, PackageStatus.PENDING)
    assert not can_move(PackageStatus.PENDING, PackageStatus.PENDING)
    assert PackageStatus.from_connective("FINISHED") is PackageStatus.FINISHED


def test_query_takes_parameters_not_string_formatting(store: Store) -> None:
    hostile = "x' or PartitionKey ne '"
    ref = _ref()
    store.packages.insert(PackageRecord(ref=ref, source=hostile))
    found = list(store.packages.query("Source eq @source", {"source": hostile}))
    assert [r.ref for r in found] == [ref]
    assert not list(store.packages.query("Source eq @source", {"source": "x"}))


def test_event_history_is_chronological(store: Store) -> None:
    ref = _ref()
    for index in range(3):
        store.events.append(ref, "status", index=index)
    assert [e["index"] for e in store.events.history(ref)] == [0, 1, 2]


def test_package_refs_are_restricted_to_a_safe_alphabet() -> None:
    assert is_valid_package_ref("inb-0123abcd")
    for bad in ("a/b", "a\\b", "a#b", "a?b", "x' or 1 eq 1", "", "ab"):
        assert not is_valid_package_ref(bad)


def test_queue_messages_are_base64_as_the_functions_host_expects(storage_connection_string: str) -> None:
    import base64
    import json

    from azure.storage.queue import QueueClient

    clients = StorageClients(storage_connection_string)
    queue_name = f"q{uuid.uuid4().hex[:12]}"
    clients.send_json(queue_name, {"packageRef": "inb-1"})
    raw = QueueClient.from_connection_string(storage_connection_string, queue_name).receive_message()
    assert raw is not None
    assert json.loads(base64.b64decode(raw.content)) == {"packageRef": "inb-1"}
