"""Creation against Azurite and the sandbox: call budgets, idempotency, crash recovery, refusals."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.connection import connective_config
from shared.connective.client import ConnectiveClient
from shared.connective.errors import AmbiguousCreateError, ConflictError
from shared.connective.ratelimit import LocalRateLimiter
from shared.pipeline import creation, intake
from shared.storage import names
from shared.storage.packages import PackageRecord
from shared.storage.status import PackageStatus
from tests.conftest import SandboxHandle
from tests.pipeline.intake_support import World, base_env, manifest, pdf_with_markers, signer, unique


@pytest.fixture()
def world(storage_connection_string: str, sandbox: SandboxHandle) -> World:
    return World(base_env(storage_connection_string, sandbox))


def _calls(sandbox: SandboxHandle) -> dict[str, Any]:
    return sandbox.admin("GET", "stats").json()


def _inbox_row(world: World, metadata: dict[str, str] | None = None) -> PackageRecord:
    blob = world.upload(names.INBOX_CONTAINER, f"{unique()}.pdf", pdf_with_markers("#SIGN1#"),
                        metadata=metadata or {"signers": "Anna Peeters <anna@example.com>"})
    record = intake.intake_inbox_blob(world.store, world.settings, blob)
    assert record is not None and record.status is PackageStatus.RECEIVED
    return record


def _packages_with_reference(world: World, ref: str) -> list[Any]:
    return [item for item in world.client.iter_package_list() if item.external_package_reference == ref]


def test_single_pdf_costs_exactly_one_call(world: World, sandbox: SandboxHandle) -> None:
    record = _inbox_row(world)
    outcome = creation.create(record.ref, store=world.store, settings=world.settings, client=world.client)
    assert outcome is creation.Outcome.CREATED
    stats = _calls(sandbox)
    assert stats["calls_total"] == 1 and stats["calls_by_operation"] == {"CreateInstantPackage": 1}
    row = world.row(record.ref)
    assert row.status is PackageStatus.PENDING and row.connective_package_id and row.pending_since
    assert row.creation_lease_until is None
    assert row.signers[0]["email"] == "anna@example.com" and row.signers[0]["actor_id"]
    assert not any("url" in key.lower() for entry in row.signers for key in entry)
    at_sandbox = sandbox.admin("GET", f"packages/{row.connective_package_id}").json()
    assert json.dumps(at_sandbox).count(record.ref) >= 1
    kinds = [event["kind"] for event in world.store.events.history(record.ref)]
    assert kinds[0] == "received" and "status_changed" in kinds
    # The row states what Connective received: the hash taken while the document was sent.
    document = row.spec["documents"][0]
    sent = world.store.clients.container(document["container"]).download_blob(document["blob"]).readall()
    assert document["sha256"] == hashlib.sha256(sent).hexdigest()


def test_manifest_with_three_documents_and_two_ordered_signers_reaches_pending(world: World,
                                                                                sandbox: SandboxHandle) -> None:
    batch = unique("batch")
    for index in range(3):
        world.upload(names.BATCHES_CONTAINER, f"{batch}/doc{index}.pdf", pdf_with_markers("#SIGN1#", "#SIGN2#"))
    body = manifest([f"doc{i}.pdf" for i in range(3)],
                    [signer("Anna Peeters", "anna@example.com", 1), signer("Bert Jans", "bert@example.com", 2)],
                    expiryDays=7)
    blob = world.upload(names.BATCHES_CONTAINER, f"{batch}/manifest.json", json.dumps(body).encode())
    record = intake.intake_batch_manifest(world.store, world.settings, blob)
    assert record is not None
    sandbox.reset()
    assert creation.create(record.ref, store=world.store, settings=world.settings,
                           client=world.client) is creation.Outcome.CREATED
    stats = _calls(sandbox)
    assert stats["calls_by_operation"] == {"CreatePackage": 1, "AddDocumentToPackage": 3,
                                           "SetProcessInformation": 1, "SetPackageStatus": 1}
    row = world.row(record.ref)
    assert row.status is PackageStatus.PENDING and row.expiry_timestamp is not None
    status = world.client.get_package_status(row.connective_package_id or "")
    assert status.package_status.value == "Pending" and len(status.package_documents) == 3
    actors = {holder.email_address: holder.actors[0] for holder in status.stakeholders}
    assert str(actors["anna@example.com"].actor_status) == "Available"
    assert str(actors["bert@example.com"].actor_status) == "Draft"  # waits for Anna (order 2)
    assert len(actors["anna@example.com"].locations) == 3  # one per document
    container = world.store.clients.container(names.BATCHES_CONTAINER)
    assert [document["sha256"] for document in row.spec["documents"]] == [
        hashlib.sha256(container.download_blob(f"{batch}/doc{index}.pdf").readall()).hexdigest() for index in range(3)]


def test_duplicate_messages_create_one_package(world: World, sandbox: SandboxHandle) -> None:
    record = _inbox_row(world)
    first = creation.create(record.ref, store=world.store, settings=world.settings, client=world.client)
    second = creation.create(record.ref, store=world.store, settings=world.settings, client=world.client)
    assert (first, second) == (creation.Outcome.CREATED, creation.Outcome.NOTHING_TO_DO)
    assert _calls(sandbox)["calls_total"] == 1
    # A repeated blob trigger afterwards changes nothing either.
    blob = world.store.clients.container(names.INBOX_CONTAINER).get_blob_client(record.spec["documents"][0]["blob"])
    again = intake.intake_inbox_blob(world.store, world.settings, blob)
    assert again is not None and again.status is PackageStatus.PENDING and again.ref == record.ref


def test_live_attempt_holds_the_row_against_a_parallel_message(world: World, sandbox: SandboxHandle) -> None:
    record = _inbox_row(world)
    world.store.packages.mutate(record.ref, lambda r: setattr(r, "status", PackageStatus.CREATING) or True)
    world.store.packages.mutate(record.ref, lambda r: setattr(r, "creation_lease_until",
                                                              r.updated_at.replace(year=2100)) or True)
    outcome = creation.create(record.ref, store=world.store, settings=world.settings, client=world.client)
    assert outcome is creation.Outcome.BUSY and _calls(sandbox)["calls_total"] == 0


def test_crash_after_the_create_is_recovered_by_reference(world: World, sandbox: SandboxHandle) -> None:
    record = _inbox_row(world)
    creation.create(record.ref, store=world.store, settings=world.settings, client=world.client)
    created_id = world.row(record.ref).connective_package_id

    def forget(row: PackageRecord) -> bool:  # as if the process died before it recorded the answer
        row.status, row.connective_package_id, row.creation_lease_until = PackageStatus.CREATING, None, None
        return True

    world.store.packages.mutate(record.ref, forget)
    outcome = creation.create(record.ref, store=world.store, settings=world.settings, client=world.client)
    assert outcome is creation.Outcome.RECORDED
    row = world.row(record.ref)
    assert row.status is PackageStatus.PENDING and row.connective_package_id == created_id
    assert _calls(sandbox)["calls_by_operation"].get("CreateInstantPackage") == 1
    assert len(_packages_with_reference(world, record.ref)) == 1


def test_ambiguous_create_is_resolved_by_look_up(storage_connection_string: str, sandbox: SandboxHandle) -> None:
    world = World(base_env(storage_connection_string, sandbox, CONNECTIVE_READ_TIMEOUT_S="1"))
    record = _inbox_row(world)
    sandbox.admin("POST", "config", json={"hang_rate": 1.0, "hang_seconds": 3})
    with pytest.raises(AmbiguousCreateError):
        creation.create(record.ref, store=world.store, settings=world.settings, client=world.client)
    row = world.row(record.ref)
    assert row.status is PackageStatus.CREATING and row.creation_lease_until is None
    sandbox.admin("POST", "config", json={"hang_rate": 0.0})
    outcome = creation.create(record.ref, store=world.store, settings=world.settings, client=world.client)
    assert outcome is creation.Outcome.RECORDED
    assert world.row(record.ref).status is PackageStatus.PENDING
    assert _calls(sandbox)["calls_by_operation"].get("CreateInstantPackage") == 1
    assert len(_packages_with_reference(world, record.ref)) == 1


def test_no_rate_token_puts_the_message_back(world: World, sandbox: SandboxHandle) -> None:
    record = _inbox_row(world)
    config = connective_config(world.settings)
    limiter = LocalRateLimiter(1, 60.0)
    limiter.acquire(0)  # the only token of the window is gone
    starved = ConnectiveClient(config, limiter).with_rate_wait(0.0)
    outcome = creation.create(record.ref, store=world.store, settings=world.settings, client=starved)
    assert outcome is creation.Outcome.DEFERRED and _calls(sandbox)["calls_total"] == 0
    row = world.row(record.ref)
    assert row.status is PackageStatus.RECEIVED and row.creation_lease_until is None  # next attempt starts afresh
    assert creation.create(record.ref, store=world.store, settings=world.settings,
                           client=world.client) is creation.Outcome.CREATED
    assert _calls(sandbox)["calls_total"] == 1  # no look-up was needed


@pytest.mark.parametrize(("setup", "code"), [
    ({"env": {"DEFAULT_INITIATOR": "not-a-portal-user"}}, "connective_rejected"),
    ({"knobs": {"audit_proofs": False}, "manifest": {"correlationId": "corr-1"}}, "connective_conflict"),
    # Set Process refuses the Server type outside Create Instant Package, once the Draft exists; a server that
    # refuses to delete a Draft (409) leaves it there, and the input is refused all the same.
    ({"signing_types": ["Server"]}, "connective_rejected"),
    ({"signing_types": ["Server"], "knobs": {"delete_draft_conflict": True}, "draft_kept": True},
     "connective_rejected"),
], ids=["initiator", "correlation", "draft-deleted", "draft-delete-refused"])
def test_connective_refusal_becomes_input_rejected(storage_connection_string: str, sandbox: SandboxHandle,
                                                   setup: dict[str, Any], code: str) -> None:
    world = World(base_env(storage_connection_string, sandbox, **setup.get("env", {})))
    if "knobs" in setup:
        sandbox.admin("POST", "config", json=setup["knobs"])
    batch = unique("batch")
    for index in range(2):
        world.upload(names.BATCHES_CONTAINER, f"{batch}/d{index}.pdf", pdf_with_markers())
    anna = {**signer("Anna", "anna@example.com"), **({"signingTypes": setup["signing_types"]}
                                                    if "signing_types" in setup else {})}
    body = manifest(["d0.pdf", "d1.pdf"], [anna], **setup.get("manifest", {}))
    blob = world.upload(names.BATCHES_CONTAINER, f"{batch}/manifest.json", json.dumps(body).encode())
    record = intake.intake_batch_manifest(world.store, world.settings, blob)
    assert record is not None and record.status is PackageStatus.RECEIVED
    outcome = creation.create(record.ref, store=world.store, settings=world.settings, client=world.client)
    assert outcome is creation.Outcome.REJECTED
    row = world.row(record.ref)
    assert row.status is PackageStatus.INPUT_REJECTED and row.final_reason and row.final_reason.startswith(code)
    report = world.report(row)
    assert report["reason"]["code"] == code and report["input"]["name"] == blob.blob_name
    left = _packages_with_reference(world, record.ref)
    if setup.get("draft_kept"):
        assert [str(item.package_status) for item in left] == ["Draft"]
    else:
        assert not left  # no Draft left behind


def _batch_row(world: World, documents: int = 2) -> PackageRecord:
    batch = unique("batch")
    for index in range(documents):
        world.upload(names.BATCHES_CONTAINER, f"{batch}/d{index}.pdf", pdf_with_markers())
    body = manifest([f"d{i}.pdf" for i in range(documents)], [signer("Anna", "anna@example.com")])
    blob = world.upload(names.BATCHES_CONTAINER, f"{batch}/manifest.json", json.dumps(body).encode())
    record = intake.intake_batch_manifest(world.store, world.settings, blob)
    assert record is not None and record.status is PackageStatus.RECEIVED
    return record


def test_a_conflict_on_a_package_that_already_left_draft_is_recorded_not_rejected(world: World,
                                                                                  sandbox: SandboxHandle) -> None:
    # The answer of the Set Package Status that started the package was lost, a signer finished it at
    # once, and the repeated request answered 409 "is Finished, not Draft".
    record = _batch_row(world)
    client = world.client
    start = client.set_package_status

    def started_then_conflict(package_id: str, status: Any) -> Any:
        for holder in start(package_id, status).stakeholders:
            for actor in holder.actors:
                sandbox.admin("POST", f"packages/{package_id}/actors/{actor.actor_id}/sign")
        raise ConflictError(409, "Package.InvalidStatus", f"package {package_id} is Finished, not Draft",
                            operation="set_package_status")

    client.set_package_status = started_then_conflict  # type: ignore[method-assign]
    outcome = creation.create(record.ref, store=world.store, settings=world.settings, client=client)
    assert outcome is creation.Outcome.RECORDED
    row = world.row(record.ref)
    assert row.status is PackageStatus.FINISHED and row.error_report is None and row.creation_lease_until is None
    assert row.archive_requested_at is not None
    assert len(_packages_with_reference(world, record.ref)) == 1
    assert "input_rejected" not in [event["kind"] for event in world.store.events.history(record.ref)]


def test_a_conflict_after_a_callback_moved_the_row_on_changes_nothing(world: World, sandbox: SandboxHandle) -> None:
    record = _inbox_row(world)
    client = world.client

    def overtaken(*_args: Any, **_kwargs: Any) -> Any:
        world.store.packages.mutate(record.ref, lambda r: setattr(r, "status", PackageStatus.REJECTED) or True)
        raise ConflictError(409, "Package.InvalidStatus", "not Draft", operation="create_instant_package")

    client.create_instant_package = overtaken  # type: ignore[method-assign]
    outcome = creation.create(record.ref, store=world.store, settings=world.settings, client=client)
    assert outcome is creation.Outcome.NOTHING_TO_DO
    assert world.row(record.ref).status is PackageStatus.REJECTED


def test_lease_is_short_and_outlasts_the_longest_call(storage_connection_string: str, sandbox: SandboxHandle) -> None:
    short = World(base_env(storage_connection_string, sandbox, CREATION_LEASE_S="60"))
    # base_env: retries for 5 s, plus the 2 s rate wait, connect 5 s and read 60 s: 72 s, + 15.
    assert creation.lease_length(short.settings, short.client).total_seconds() == 87
    chaos = World(base_env(storage_connection_string, sandbox, CREATION_LEASE_S="60",
                           CONNECTIVE_READ_TIMEOUT_S="3", CONNECTIVE_CONNECT_TIMEOUT_S="2"))
    assert creation.lease_length(chaos.settings, chaos.client).total_seconds() == 60
    assert creation.lease_length(World(base_env(storage_connection_string, sandbox)).settings,
                                 chaos.client).total_seconds() == 240  # the default


def test_a_dead_attempts_lease_lapses_after_creation_lease_s(storage_connection_string: str,
                                                              sandbox: SandboxHandle) -> None:
    world = World(base_env(storage_connection_string, sandbox, CREATION_LEASE_S="60",
                           CONNECTIVE_READ_TIMEOUT_S="3", CONNECTIVE_CONNECT_TIMEOUT_S="2"))
    record = _inbox_row(world)
    claimed_at = world.row(record.ref).updated_at

    def claimed_by_a_dead_worker(row: PackageRecord) -> bool:
        row.status, row.creation_lease_until = PackageStatus.CREATING, claimed_at + timedelta(seconds=60)
        return True

    world.store.packages.mutate(record.ref, claimed_by_a_dead_worker)
    early = creation.create(record.ref, store=world.store, settings=world.settings, client=world.client,
                            now=lambda: claimed_at + timedelta(seconds=20))
    assert early is creation.Outcome.BUSY and _calls(sandbox)["calls_total"] == 0
    late = creation.create(record.ref, store=world.store, settings=world.settings, client=world.client,
                           now=lambda: claimed_at + timedelta(seconds=61))
    assert late is creation.Outcome.CREATED  # looked up by reference first: nothing was there
    assert _calls(sandbox)["calls_by_operation"] == {"PackageList": 1, "CreateInstantPackage": 1}
    assert world.row(record.ref).status is PackageStatus.PENDING


def test_a_live_attempt_renews_its_lease_before_each_call(storage_connection_string: str,
                                                          sandbox: SandboxHandle) -> None:
    world = World(base_env(storage_connection_string, sandbox, CREATION_LEASE_S="60",
                           CONNECTIVE_READ_TIMEOUT_S="3", CONNECTIVE_CONNECT_TIMEOUT_S="2"))
    record = _batch_row(world, documents=3)
    clock = [datetime.now(UTC)]
    leases: list[tuple[datetime, datetime | None]] = []
    client = world.client
    add = client.add_document_to_package

    def slow_add(*args: Any, **kwargs: Any) -> Any:
        leases.append((clock[0], world.row(record.ref).creation_lease_until))
        clock[0] += timedelta(seconds=50)  # each upload takes longer than half the lease
        return add(*args, **kwargs)

    client.add_document_to_package = slow_add  # type: ignore[method-assign]
    outcome = creation.create(record.ref, store=world.store, settings=world.settings, client=client,
                              now=lambda: clock[0])
    assert outcome is creation.Outcome.CREATED and len(leases) == 3
    step = creation.longest_step_s(client)
    assert all(until is not None and (until - at).total_seconds() > step for at, until in leases)
    assert world.row(record.ref).creation_lease_until is None


def test_an_attempt_whose_lease_was_taken_over_stops(world: World, sandbox: SandboxHandle) -> None:
    record = _batch_row(world)
    clock = [datetime.now(UTC)]
    client = world.client
    create_package = client.create_package

    def create_then_lose_the_row(request: Any) -> Any:
        created = create_package(request)
        # The worker stalled past its lease, and another attempt claimed the row meanwhile.
        clock[0] += timedelta(minutes=5)
        world.store.packages.mutate(record.ref, lambda r: setattr(
            r, "creation_lease_until", clock[0] + timedelta(minutes=3)) or True)
        return created

    client.create_package = create_then_lose_the_row  # type: ignore[method-assign]
    outcome = creation.create(record.ref, store=world.store, settings=world.settings, client=client,
                              now=lambda: clock[0])
    assert outcome is creation.Outcome.BUSY
    assert _calls(sandbox)["calls_by_operation"] == {"CreatePackage": 1}  # no document added by this attempt
    row = world.row(record.ref)
    assert row.status is PackageStatus.CREATING and row.connective_package_id  # the id is kept for the resumer
    assert row.creation_lease_until == clock[0] + timedelta(minutes=3)  # the other attempt's lease stands


@pytest.mark.parametrize("sort_field", ["refuse", "ignore", "known"])
def test_the_look_up_after_an_unclear_create_works_whatever_sortfield_the_server_takes(
        storage_connection_string: str, sandbox: SandboxHandle, sort_field: str) -> None:
    world = World(base_env(storage_connection_string, sandbox, CONNECTIVE_READ_TIMEOUT_S="1"))
    sandbox.admin("POST", "config", json={"list_sort_field": sort_field, "list_status_case": "upper"})
    record = _inbox_row(world)
    sandbox.admin("POST", "config", json={"hang_rate": 1.0, "hang_seconds": 3})
    with pytest.raises(AmbiguousCreateError):
        creation.create(record.ref, store=world.store, settings=world.settings, client=world.client)
    sandbox.admin("POST", "config", json={"hang_rate": 0.0})
    outcome = creation.create(record.ref, store=world.store, settings=world.settings, client=world.client)
    assert outcome is creation.Outcome.RECORDED and world.row(record.ref).status is PackageStatus.PENDING
    assert _calls(sandbox)["calls_by_operation"].get("CreateInstantPackage") == 1


def test_a_refused_look_up_is_retried_and_never_rejects_the_input(world: World, sandbox: SandboxHandle,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    record = _inbox_row(world)
    world.store.packages.mutate(record.ref, lambda row: setattr(row, "status", PackageStatus.CREATING) or True)
    sandbox.admin("POST", "config", json={"list_sort_field": "refuse"})
    real_list = ConnectiveClient.package_list

    def with_a_sort_field(self: ConnectiveClient, **filters: Any) -> Any:  # what a server that answers 400 meets
        return real_list(self, **filters, sort_field="CreationTimestamp")

    monkeypatch.setattr(ConnectiveClient, "package_list", with_a_sort_field)
    with pytest.raises(creation.LookupFailed):
        creation.create(record.ref, store=world.store, settings=world.settings, client=world.client)
    row = world.row(record.ref)
    assert row.status is PackageStatus.CREATING and row.creation_lease_until is None and row.error_report is None
    assert "CreateInstantPackage" not in _calls(sandbox)["calls_by_operation"]
    monkeypatch.undo()  # the next attempt (the host's retry) meets a server that answers
    outcome = creation.create(record.ref, store=world.store, settings=world.settings, client=world.client)
    assert outcome is creation.Outcome.CREATED and world.row(record.ref).status is PackageStatus.PENDING
