"""Bulk sends end to end: the local host, Azurite and the sandbox (auto-signing), through blob and API."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from devtools.ports import free_port
from devtools.world import LocalWorld
from shared.bulk.report import SUMMARY_FILE
from shared.config import Settings
from shared.connection import connective_client
from shared.storage import names
from shared.storage.clients import StorageClients
from shared.storage.store import Store
from tests.bulk.bulk_support import csv_bytes, job_spec, new_job_id, people, report_rows, summary, upload_job
from tests.conftest import keyed, wait_until
from tests.sandbox.pdfs import make_pdf
from tests.webhooks.receiver import Receiver

pytestmark = [pytest.mark.slow]


@pytest.fixture(scope="module")
def world() -> Iterator[LocalWorld]:
    with LocalWorld(workers=1, settings_file=None, host_port=free_port(), sandbox_port=free_port(),
                    sandbox_args=["--auto-sign", "--auto-sign-delay", "1"],
                    extra_settings={"CONNECTIVE_RATE_CALLS": "1200", "BULK_REPORT_INTERVAL_S": "1",
                                    "STATUS_REFRESH_DELAY_S": "1", "WEBHOOK_RETRY_BASE_S": "1"}) as running:
        yield running


@pytest.fixture(scope="module")
def store(world: LocalWorld) -> Store:
    return Store(StorageClients(world.storage_connection_string))


def wait_for(predicate: Any, timeout_s: float, what: str) -> Any:
    return wait_until(predicate, timeout_s, 0.5, what)


def final_summary(store: Store, job: str, timeout_s: float = 240) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        blob = store.clients.container(names.BULK_CONTAINER).get_blob_client(f"{job}/{SUMMARY_FILE}")
        if not blob.exists():
            return None
        current = summary(store, job)
        return current if current["final"] else None

    return wait_for(done, timeout_s, f"bulk send {job} to be final")  # type: ignore[no-any-return]


def connective_refs(world: LocalWorld) -> list[str]:
    user, password = world.sandbox_credentials
    client = connective_client(Settings({"CONNECTIVE_BASE_URL": world.sandbox_url,
                                                      "CONNECTIVE_USERNAME": user, "CONNECTIVE_PASSWORD": password,
                                                      "CONNECTIVE_RATE_CALLS": "1200"}))
    return [item.external_package_reference or "" for item in client.iter_package_list(page_size=100)]


def test_a_50_row_job_archives_one_package_per_row_and_reports_bad_rows(world: LocalWorld, store: Store,
                                                                        receiver: Receiver) -> None:
    trigger = requests.post(f"{world.host_url}/api/subscriptions/triggers/bulk-send-completed",
                            json={"url": receiver.url}, headers=keyed(world), timeout=10)
    assert trigger.status_code == 201
    job = new_job_id()
    rows = people(50)
    rows += [["broken-address", "Bad", "Email", "en", "Sales"], ["nameless@example.com", "", "", "en", "Sales"],
             ["person3@example.com", "Again", "Three", "en", "Sales"]]
    upload_job(store, job, job_spec(), csv_bytes(rows))

    result = final_summary(store, job)
    assert result["state"] == "Completed"
    assert result["rows"] == {"total": 53, "packages": 50, "skipped": 3}
    assert result["statuses"] == {"Archived": 50, "Skipped": 3}
    report = report_rows(store, job)
    archived = [row for row in report if row["status"] == "Archived"]
    assert len({row["packageRef"] for row in archived}) == 50
    assert all(row["archivedPath"].startswith(names.SIGNED_CONTAINER) for row in archived)
    reasons = {row["line"]: row["reason"] for row in report if row["status"] == "Skipped"}
    assert reasons["52"].startswith("email_invalid") and reasons["53"].startswith("name_missing")
    assert reasons["54"].startswith("duplicate_key")

    event = wait_for(lambda: [json.loads(r.body) for r in receiver.requests], 60, "the completion event")[0]
    assert event["type"] == "bulk_send.completed" and event["data"]["bulkSend"] == job
    assert event["data"]["statuses"] == [{"status": "Archived", "count": 50}, {"status": "Skipped", "count": 3}]

    # The same job again with four rows appended: only those four become packages.
    upload_job(store, job, job_spec(), csv_bytes(people(54)))
    wait_for(lambda: summary(store, job)["generation"] == 2 and summary(store, job)["final"], 180,
             "the second upload to be final")
    refs = [ref for ref in connective_refs(world) if ref in {row["packageRef"] for row in report_rows(store, job)}]
    assert len(refs) == len(set(refs)) == 54
    assert summary(store, job)["statuses"] == {"Archived": 54}


def _operation(spec: dict[str, Any], operation_id: str) -> tuple[str, str]:
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if isinstance(operation, dict) and operation.get("operationId") == operation_id:
                return method.upper(), spec["basePath"] + path
    raise AssertionError(f"{operation_id} is not in the served definition")


def test_the_api_flow_through_the_served_definition_and_cancel(world: LocalWorld, store: Store) -> None:
    served = requests.get(f"{world.host_url}/api/openapi.json", headers=keyed(world), timeout=10).json()
    assert any(op.get("summary") == "When a bulk send completes" for item in served["paths"].values()
               for op in item.values() if isinstance(op, dict))
    create_method, create_path = _operation(served, "CreateBulkSend")
    get_method, get_path = _operation(served, "GetBulkSend")
    cancel_method, cancel_path = _operation(served, "CancelBulkSend")
    host = world.host_url

    # Signers stay away, so the packages wait in Pending for the cancel.
    assert requests.post(f"{world.sandbox_root_url}/_sandbox/config", json={"auto_sign": False},
                         timeout=10).status_code == 200
    try:
        body = {"name": "Handbook - {FirstName} {LastName}",
                "documents": [{"content": base64.b64encode(make_pdf(markers={1: ["#SIGN1#"]})).decode(),
                               "name": "Handbook"}],
                "recipients": [{"email": f"api{n}@example.com", "firstName": "Api", "lastName": str(n)}
                               for n in range(6)] + [{"email": "not an email", "firstName": "X", "lastName": "Y"}]}
        key = uuid.uuid4().hex
        accepted = requests.request(create_method, host + create_path, json=body,
                                    headers={**keyed(world), "Idempotency-Key": key}, timeout=30)
        assert accepted.status_code == 202, accepted.text
        job = accepted.json()["jobId"]
        status_url = host + get_path.replace("{job}", job)
        assert accepted.headers["Location"].endswith(f"/api/bulk-sends/{job}")

        def pending() -> dict[str, Any] | None:
            answer = requests.request(get_method, status_url, headers=keyed(world), timeout=10).json()
            counts = {entry["status"]: entry["count"] for entry in answer["statuses"]}
            return answer if counts.get("Pending") == 6 else None

        progress = wait_for(pending, 120, "six pending packages")
        assert progress["skipped"] == 1 and progress["failures"][0]["code"] == "email_invalid"
        assert progress["etaSeconds"] >= 0 and not progress["isFinal"]

        cancelled = requests.request(cancel_method, host + cancel_path.replace("{job}", job), headers=keyed(world),
                                     timeout=10)
        assert cancelled.status_code == 202 and cancelled.json()["state"] == "Cancelling"
        result = final_summary(store, job, 120)
        assert result["state"] == "Cancelled" and result["statuses"] == {"Revoked": 6, "Skipped": 1}
        final = requests.request(get_method, status_url, headers=keyed(world), timeout=10).json()
        assert final["isFinal"] and final["state"] == "Cancelled"
        again = requests.request(cancel_method, host + cancel_path.replace("{job}", job), headers=keyed(world),
                                 timeout=10)
        assert again.status_code == 409
    finally:
        requests.post(f"{world.sandbox_root_url}/_sandbox/config", json={"auto_sign": True}, timeout=10)
