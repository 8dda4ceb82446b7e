"""Several worker processes compete for the same queues and blobs, like scaled-out instances."""

from __future__ import annotations

import json
import os
import signal
from collections import Counter
from pathlib import Path

from devtools.azurite import Azurite
from tests.host.conftest import INBOX, Storage, start_host, wait_for

MESSAGES = 60
BLOBS = 6


def test_three_workers_handle_each_message_and_blob_exactly_once(fresh_azurite: Azurite, tmp_path: Path) -> None:
    storage = Storage(fresh_azurite.connection_string)
    host = start_host(fresh_azurite.connection_string, tmp_path, 3)
    try:
        assert len(host.worker_pids()) == 3
        for index in range(MESSAGES):
            storage.send("work-items", json.dumps({"id": f"m{index}", "sleep": 0.05}))
        for index in range(BLOBS):
            storage.upload(INBOX, f"scale/doc-{index}.txt", b"x")
        wait_for(lambda: len(storage.calls("queue_work")) >= MESSAGES, timeout_s=120)
        wait_for(lambda: len(storage.calls("blob_inbox")) >= BLOBS, timeout_s=120)
        # A second run would need a message still in the queue or a blob whose receipt is not yet
        # complete: once the queues are empty and every receipt is complete, all runs are counted.
        wait_for(lambda: storage.messages_left("work-items") == 0, timeout_s=120)
        wait_for(lambda: len(storage.complete_receipts()) >= BLOBS and storage.blob_work_left() == 0,
                 timeout_s=120)
        # The invocation lines are read from the host's output, which may trail the table rows.
        wait_for(lambda: len([e for e in host.events("host.invocation") if e["function"] == "queue_work"])
                 >= MESSAGES)
        rows = storage.calls("queue_work")
        assert Counter(row["item"] for row in rows) == Counter(f"m{i}" for i in range(MESSAGES))
        assert all(row["dequeue_count"] == 1 for row in rows)
        assert len({row["pid"] for row in rows}) >= 2, "the workers did not share the queue"
        logged = {e["pid"] for e in host.events("host.invocation") if e["function"] == "queue_work"}
        assert logged == {row["pid"] for row in rows}, "each invocation line names the worker that ran it"
        blob_rows = Counter(row["blob"] for row in storage.calls("blob_inbox"))
        assert blob_rows == Counter(f"{INBOX}/scale/doc-{i}.txt" for i in range(BLOBS))
        # The work can be done before the timer's first occurrence: wait for a tick, then count who ran them.
        wait_for(lambda: storage.calls("timer_tick"), timeout_s=120)
        timer_pids = {row["pid"] for row in storage.calls("timer_tick")}
        assert len(timer_pids) == 1, "the timer is a singleton"
    finally:
        host.stop()


def test_a_killed_worker_is_replaced_and_the_others_carry_on(fresh_azurite: Azurite, tmp_path: Path) -> None:
    storage = Storage(fresh_azurite.connection_string)
    host = start_host(fresh_azurite.connection_string, tmp_path, 2)
    try:
        victim, survivor = host.worker_pids()
        os.kill(victim, signal.SIGKILL)
        storage.send("work-items", json.dumps({"id": "after-kill"}))
        rows = wait_for(lambda: storage.calls("queue_work"))
        assert rows[0]["item"] == "after-kill"
        pids = wait_for(lambda: len(host.worker_pids()) == 2 and host.worker_pids())
        assert survivor in pids and victim not in pids
        restarted = wait_for(lambda: host.events("host.worker.restarting"))
        assert restarted and restarted[0]["exit_code"] == -signal.SIGKILL
    finally:
        host.stop()
