"""LocalWorld: Azurite, the sandbox and the host started together, and its fault helpers."""

from __future__ import annotations

import json

import requests

from devtools.ports import free_port
from devtools.world import LocalWorld
from tests.host.conftest import TEST_APP, TIMER_SCHEDULE, Storage, wait_for


def test_world_starts_everything_and_survives_worker_and_azurite_restarts() -> None:
    ports = (free_port(), free_port(), free_port())
    settings = {"TEST_INBOX_CONTAINER": "inbox", "TEST_TIMER_SCHEDULE": TIMER_SCHEDULE}
    with LocalWorld(app=TEST_APP, settings_file=None, azurite_ports=ports, host_port=free_port(),
                    sandbox_port=free_port(), extra_settings=settings) as world:
        assert f":{ports[0]}/" in world.storage_connection_string
        assert world.sandbox_credentials[0] == "demo"
        assert requests.get(f"{world.sandbox_root_url}/_sandbox/stats", timeout=10).status_code == 200
        answer = requests.get(f"{world.host_url}/api/items/5", headers={"x-functions-key": world.function_key},
                              timeout=10)
        assert answer.status_code == 200
        assert world.settings["PUBLIC_BASE_URL"] == world.host_url

        world.kill_worker(0)
        world.restart_azurite()
        storage = Storage(world.storage_connection_string)
        storage.send("work-items", json.dumps({"id": "after-restarts"}))
        wait_for(lambda: storage.calls("queue_work"))
    assert world.host is None or world.host.process is None
