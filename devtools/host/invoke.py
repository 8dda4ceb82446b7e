"""One invocation: send it to the worker, write the outputs it returns, log it.

The worker (`devtools.host.channel`) binds the parameters, calls the function and serializes what
the function set and returned; the host resolves the output bindings' paths and writes them to
storage after the function returns, as the real host does.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import time
import uuid
from collections.abc import Mapping
from typing import Any

from devtools.host import logs, rpc
from devtools.host.channel import WorkerChannel
from devtools.host.functions import RETURN_BINDING, FunctionSpec
from devtools.host.inputs import Trigger, blob_data
from devtools.host.outputs import OutputWriter, resolve_expressions
from devtools.host.storage import StorageAccounts

_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


class InvocationFailed(Exception):
    """The function (or one of its output bindings) failed."""


def invocation_trace_parent(incoming: str) -> str:
    """The W3C traceparent of the invocation's own span: a child of a valid incoming one, else a new trace."""
    found = _TRACEPARENT.match(incoming.strip().lower())
    trace_id = found.group(1) if found and set(found.group(1)) != {"0"} else secrets.token_hex(16)
    flags = found.group(3) if found else "01"
    return f"00-{trace_id}-{secrets.token_hex(8)}-{flags}"


class Invoker:
    def __init__(self, channel: WorkerChannel, outputs: OutputWriter, storage: StorageAccounts) -> None:
        self._channel = channel
        self._outputs = outputs
        self._storage = storage

    def _request(self, spec: FunctionSpec, trigger: Trigger, invocation_id: str) -> rpc.InvocationRequest:
        input_data = [rpc.ParameterBinding(name=spec.trigger.name, data=trigger.data)]
        for binding in spec.inputs:
            container, _, blob_name = resolve_expressions(binding.get("path"), trigger.metadata).partition("/")
            data = blob_data(binding, self._storage.blob(binding.connection), container, blob_name)
            input_data.append(rpc.ParameterBinding(name=binding.name, data=data))
        return rpc.InvocationRequest(
            invocation_id=invocation_id, function_id=spec.worker_function_id, input_data=input_data,
            trigger_metadata={key: rpc.typed(value) for key, value in trigger.metadata.items()},
            trace_context=rpc.RpcTraceContext(trace_parent=invocation_trace_parent(trigger.trace_parent),
                                              trace_state=trigger.trace_state),
            retry_context=rpc.RetryContext(retry_count=0, max_retry_count=0))

    def invoke(self, spec: FunctionSpec, trigger: Trigger) -> rpc.TypedData:
        """Runs the function; returns its return value as the worker sent it. Raises InvocationFailed."""
        invocation_id = str(uuid.uuid4())
        started = time.perf_counter()
        outcome = "Failed"
        try:
            try:
                response = self._channel.invoke(self._request(spec, trigger, invocation_id))
            except Exception as error:  # the request could not be built (an input binding) or sent
                logs.event("host.invocation.error", logging.ERROR, exc_info=True, function=spec.name,
                           invocation_id=invocation_id, error_type=type(error).__name__)
                raise InvocationFailed(f"{spec.name} failed: {type(error).__name__}") from error
            if response.result.status != rpc.StatusResult.Success:
                exception = response.result.exception
                logs.event("host.invocation.error", logging.ERROR, function=spec.name, invocation_id=invocation_id,
                           error_type=exception.message.partition(":")[0], error=exception.stack_trace)
                raise InvocationFailed(f"{spec.name} failed: {exception.message.partition(':')[0]}")
            try:
                self._write_outputs(spec, response, trigger.metadata)
            except Exception as error:
                logs.event("host.invocation.error", logging.ERROR, exc_info=True, function=spec.name,
                           invocation_id=invocation_id, error_type=type(error).__name__)
                raise InvocationFailed(f"{spec.name} failed writing its outputs: {type(error).__name__}") from error
            outcome = "Succeeded"
            return response.return_value
        finally:
            fields: dict[str, Any] = {"function": spec.name, "invocation_id": invocation_id,
                                      "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                                      "outcome": outcome, "trigger": trigger.kind,
                                      "pid": os.getpid()}  # which worker (or the HTTP front end) ran it
            if trigger.dequeue_count is not None:
                fields["dequeue_count"] = trigger.dequeue_count
            logs.event("host.invocation", logging.INFO if outcome == "Succeeded" else logging.WARNING, **fields)

    def _write_outputs(self, spec: FunctionSpec, response: rpc.InvocationResponse,
                       metadata: Mapping[str, Any]) -> None:
        values = {binding.name: binding.data for binding in response.output_data}
        for binding in spec.outputs:
            if binding.type == "http":
                continue
            data = response.return_value if binding.name == RETURN_BINDING else values.get(binding.name)
            value = rpc.plain(data)
            if value is not None:
                self._outputs.write(binding, value, metadata)
