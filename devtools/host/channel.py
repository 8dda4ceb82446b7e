"""The host's side of the worker channel: Microsoft's Python worker library, driven in process.

In Azure the Functions host talks to the Python worker over gRPC; the worker's logic lives in
`azure_functions_runtime`, whose handlers take the host's protocol messages and return the
worker's answers. Here the same handlers are called directly, with the messages of
`devtools.host.rpc`, on one event loop per process (as the worker runs them on its own loop):
the library imports and indexes the app, converts every input, calls the function on its own
thread pool, and serializes outputs and return values. The host never builds a trigger argument.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import sys
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from devtools.host import rpc
from devtools.host.config import HostConfigError

SCRIPT_FILE_SETTING = "PYTHON_SCRIPT_FILE_NAME"
THREADPOOL_SETTING = "PYTHON_THREADPOOL_THREAD_COUNT"
# The library's INFO lines (the indexing summary, one line per invocation) duplicate the host's own.
LIBRARY_LOGGER = "azure.functions"


class WorkerError(RuntimeError):
    """The worker answered a host request with a failure status."""


def _check(result: rpc.StatusResult, what: str) -> None:
    if result.status != rpc.StatusResult.Success:
        raise WorkerError(f"{what} failed: {result.exception.message}\n{result.exception.stack_trace}".rstrip())


class WorkerChannel:
    """One worker (the library's process-wide state) and the loop that runs its handlers."""

    def __init__(self, app_module: str) -> None:
        self._app_module = app_module
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="worker-loop", daemon=True)
        self.capabilities: dict[str, str] = {}
        self.metadata: list[rpc.RpcFunctionMetadata] = []
        self.script_root = Path.cwd()

    def _run(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    def _locate_app(self) -> tuple[Path, str]:
        """The app's folder and script file name, for the worker's own import of the app.

        The worker imports `<script stem>` from the app folder. A dotted module (a test app inside a
        package) is imported here first under its full name and aliased to its stem, so both names
        are one module object.
        """
        module = importlib.import_module(self._app_module)
        module_file = getattr(module, "__file__", None)
        if not module_file:
            raise HostConfigError(f"{self._app_module} is not a module file")
        path = Path(module_file).resolve()
        sys.modules.setdefault(path.stem, module)
        if str(path.parent) not in sys.path:
            sys.path.append(str(path.parent))
        return path.parent, path.name

    def start(self) -> WorkerChannel:
        """Worker init (which indexes the app), functions metadata, and a load request per function."""
        import azure_functions_runtime as worker

        logging.getLogger(LIBRARY_LOGGER).setLevel(logging.WARNING)
        self.script_root, script_file = self._locate_app()
        os.environ[SCRIPT_FILE_SETTING] = script_file
        self._thread.start()
        properties = {"protos": rpc, "host": "127.0.0.1"}
        init = rpc.StreamingMessage(worker_init_request=rpc.WorkerInitRequest(
            host_version="4", function_app_directory=str(self.script_root),
            capabilities={"FunctionDataCache": "false"}))
        answer = self._run(worker.worker_init_request(rpc.WorkerRequest("WorkerInitRequest", init, properties)))
        _check(answer.result, "worker init (indexing the app)")
        self.capabilities = dict(answer.capabilities)
        listing = rpc.StreamingMessage(functions_metadata_request=rpc.FunctionsMetadataRequest(
            function_app_directory=str(self.script_root)))
        metadata = self._run(worker.functions_metadata_request(
            rpc.WorkerRequest("FunctionsMetadataRequest", listing, properties)))
        _check(metadata.result, "functions metadata")
        self.metadata = list(metadata.function_metadata_results or [])
        for function in self.metadata:
            load = rpc.StreamingMessage(function_load_request=rpc.FunctionLoadRequest(
                function_id=function.function_id, metadata=function))
            loaded = self._run(worker.function_load_request(rpc.WorkerRequest("FunctionLoadRequest", load, properties)))
            _check(loaded.result, f"loading {function.name}")
        return self

    def start_pool(self, threads: int) -> None:
        """The worker's thread pool for synchronous functions.

        The library sizes it from PYTHON_THREADPOOL_THREAD_COUNT. When that is not set, the host
        gives it the concurrency of its own listeners, so that no invocation the host has started
        waits for a thread; the setting is put back afterwards, so processes started later (the
        workers) size their own pools.
        """
        import azure_functions_runtime as worker

        configured = os.environ.get(THREADPOOL_SETTING)
        os.environ[THREADPOOL_SETTING] = configured or str(max(1, threads))
        try:
            worker.start_threadpool_executor()
        finally:
            if configured is None:
                del os.environ[THREADPOOL_SETTING]

    def invoke(self, request: rpc.InvocationRequest) -> rpc.InvocationResponse:
        """One invocation; blocks the calling thread until the worker answers."""
        import azure_functions_runtime as worker

        message = rpc.StreamingMessage(invocation_request=request)
        return self._run(worker.invocation_request(
            rpc.WorkerRequest("InvocationRequest", message, {"protos": rpc, "host": "127.0.0.1"})))
