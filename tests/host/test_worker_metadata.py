"""The worker library's own index of function_app: the metadata Azure's host reads lists every function
and binding the app declares, and the local host can serve each of them."""

from __future__ import annotations

import json

import pytest
from azure.functions.decorators.core import BindingDirection

from devtools.host.channel import SCRIPT_FILE_SETTING, WorkerChannel
from devtools.host.functions import BLOB_TRIGGER, index
from devtools.infra_model import registered_functions


@pytest.fixture(scope="module")
def worker() -> WorkerChannel:
    import function_app

    # The worker indexes the app with FunctionApp.get_functions(), which refuses a second call in one
    # process; whatever this test process listed before, the worker's listing is the first.
    function_app.app.functions_bindings = None
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(SCRIPT_FILE_SETTING, "function_app.py")  # restored afterwards; the channel sets it
        return WorkerChannel("function_app").start()


def test_worker_metadata_lists_every_function_and_binding_of_the_app(worker: WorkerChannel) -> None:
    declared = {f.get_function_name(): f for f in registered_functions()}
    listed = {m.name: m for m in worker.metadata}
    assert set(listed) == set(declared) and len(listed) >= 20
    for name, function in declared.items():
        raw = [json.loads(b) for b in listed[name].raw_bindings]
        assert sorted((b["name"], b["type"], b["direction"]) for b in raw) == sorted(
            (b.name, b.type, BindingDirection(b.direction).name) for b in function.get_bindings()), name
        assert listed[name].properties == {"worker_indexed": "True"}
        for binding in raw:
            if binding["type"] == BLOB_TRIGGER:  # the blob triggers bind the SDK's BlobClient
                assert binding["properties"] == {"SupportsDeferredBinding": True}, name


def test_the_host_serves_every_function_the_worker_lists(worker: WorkerChannel,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAINTENANCE_SCHEDULE", "0 */5 * * * *")
    specs = index(worker.metadata)
    assert {s.name for s in specs} == {m.name for m in worker.metadata}
    assert all(s.worker_function_id for s in specs)
