"""Queue triggers: decoding, dequeue count, retries and the poison queue."""

from __future__ import annotations

import base64
import json
import uuid

from devtools.host.process import HostProcess
from tests.host.conftest import Storage, wait_for


def _rows_for(storage: Storage, item: str) -> list[dict]:
    return [row for row in storage.calls("queue_work") if row["item"] == item]


def test_message_runs_once_with_its_metadata(live_host: HostProcess, host_storage: Storage) -> None:
    item = str(uuid.uuid4())
    host_storage.send("work-items", json.dumps({"id": item}))
    rows = wait_for(lambda: _rows_for(host_storage, item))
    assert rows[0]["dequeue_count"] == 1 and rows[0]["message_id"]
    # Deleted after success (the count includes invisible messages): nothing is left to run it again.
    wait_for(lambda: host_storage.messages_left("work-items") == 0)
    assert len(_rows_for(host_storage, item)) == 1


def test_failing_message_goes_to_poison_after_max_dequeue_count(live_host: HostProcess,
                                                                 host_storage: Storage) -> None:
    marker = str(uuid.uuid4())
    host_storage.send("failing-items", json.dumps({"marker": marker}))
    poisoned = wait_for(lambda: host_storage.raw_messages("failing-items-poison"))
    assert json.loads(base64.b64decode(poisoned[-1]))["marker"] == marker  # the same wire text

    def attempts_logged() -> list[dict]:
        return [e for e in live_host.events("host.invocation") if e["function"] == "queue_failing"]

    # The host's output may trail the poison message: wait for the fifth attempt's line.
    attempts = wait_for(lambda: len(attempts_logged()) >= 5 and attempts_logged())
    assert [a["dequeue_count"] for a in attempts] == [1, 2, 3, 4, 5]
    assert all(a["outcome"] == "Failed" for a in attempts)
    assert host_storage.raw_messages("failing-items") == []


def test_message_that_is_not_base64_is_poisoned_without_running(live_host: HostProcess,
                                                                host_storage: Storage) -> None:
    client = host_storage.queues.get_queue_client("work-items")
    client.send_message("{not base64}")
    poisoned = wait_for(lambda: host_storage.raw_messages("work-items-poison"))
    assert "{not base64}" in poisoned
