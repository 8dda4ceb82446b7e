"""One invocation: bind the parameters, call the function (sync or async), write the outputs, log it."""

from __future__ import annotations

import asyncio
import logging
import os
import time
import types
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import azure.functions as func

from devtools.host import logs
from devtools.host.functions import CONTEXT_PARAMETER, RETURN_BINDING, FunctionSpec
from devtools.host.outputs import OutputWriter


class OutValue(func.Out):  # type: ignore[type-arg]
    """The value a function sets on an output binding."""

    def __init__(self) -> None:
        self._value: Any = None

    def set(self, val: Any) -> None:
        self._value = val

    def get(self) -> Any:
        return self._value


class InvocationContext(func.Context):
    """The `context` parameter of an invocation."""

    def __init__(self, invocation_id: str, function_name: str, function_directory: str) -> None:
        self._invocation_id = invocation_id
        self._function_name = function_name
        self._function_directory = function_directory
        self._retry_context = types.SimpleNamespace(retry_count=0, max_retry_count=0, exception=None)
        self._trace_context = types.SimpleNamespace(trace_parent="", trace_state="", attributes={})

    @property
    def invocation_id(self) -> str:
        return self._invocation_id

    @property
    def function_name(self) -> str:
        return self._function_name

    @property
    def function_directory(self) -> str:
        return self._function_directory

    @property
    def trace_context(self) -> Any:
        return self._trace_context

    @property
    def retry_context(self) -> Any:
        return self._retry_context

    @property
    def thread_local_storage(self) -> Any:
        return types.SimpleNamespace(invocation_id=self._invocation_id)


@dataclass
class Trigger:
    """What fired: the value for the trigger parameter and the metadata for binding expressions."""

    kind: str
    value: Any
    metadata: Mapping[str, Any] = field(default_factory=dict)
    dequeue_count: int | None = None


class InvocationFailed(Exception):
    """The function (or one of its output bindings) raised; the cause is chained."""


class Invoker:
    def __init__(self, outputs: OutputWriter) -> None:
        self._outputs = outputs

    def invoke(self, spec: FunctionSpec, trigger: Trigger) -> Any:
        invocation_id = str(uuid.uuid4())
        outs = {b.name: OutValue() for b in spec.outputs if b.name in spec.parameters}
        arguments: dict[str, Any] = {spec.trigger.name: trigger.value, **outs}
        if CONTEXT_PARAMETER in spec.parameters:
            arguments[CONTEXT_PARAMETER] = InvocationContext(invocation_id, spec.name, spec.directory)
        metadata = {str(k).lower(): v for k, v in trigger.metadata.items()}
        for name in spec.metadata_parameters:
            arguments[name] = metadata.get(name.lower())
        started = time.perf_counter()
        outcome = "Failed"
        try:
            with logs.invocation_scope(invocation_id, spec.name):
                try:
                    result = spec.user_function(**arguments)
                    if asyncio.iscoroutine(result):
                        result = asyncio.run(result)
                    self._write_outputs(spec, outs, result, trigger.metadata)
                except Exception as error:
                    logs.event("host.invocation.error", logging.ERROR, exc_info=True, function=spec.name,
                               invocation_id=invocation_id, error_type=type(error).__name__)
                    raise InvocationFailed(f"{spec.name} failed: {type(error).__name__}") from error
            outcome = "Succeeded"
            return result
        finally:
            fields: dict[str, Any] = {"function": spec.name, "invocation_id": invocation_id,
                                      "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                                      "outcome": outcome, "trigger": trigger.kind,
                                      "pid": os.getpid()}  # which worker (or the HTTP front end) ran it
            if trigger.dequeue_count is not None:
                fields["dequeue_count"] = trigger.dequeue_count
            logs.event("host.invocation", logging.INFO if outcome == "Succeeded" else logging.WARNING, **fields)

    def _write_outputs(self, spec: FunctionSpec, outs: Mapping[str, OutValue], result: Any,
                       metadata: Mapping[str, Any]) -> None:
        for binding in spec.outputs:
            if binding.type == "http":
                continue
            value = result if binding.name == RETURN_BINDING else outs[binding.name].get() if binding.name in outs \
                else None
            if value is not None:
                self._outputs.write(binding, value, metadata)
