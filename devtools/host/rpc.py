"""The part of the Functions host's `FunctionRpc` protocol that the local host speaks to the worker.

`azure_functions_runtime` (Microsoft's Python worker library) takes the host's protocol messages
and returns the worker's answers; in Azure those are protobuf objects that the worker's gRPC shell
passes through. The library only reads and writes attributes, calls `WhichOneof` and reads a few
enum values from the module it is given, so plain Python classes of the same shape serve it: this
module is that module. Field names and enum values follow the protocol's definitions
(`FunctionRpc.proto`); only the messages and fields that the host or the library use are here.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar


def _empty_map() -> dict[str, Any]:
    return {}


def _empty_list() -> list[Any]:
    return []


class Message:
    """A protocol message: keyword construction, defaults for unset fields, and oneof groups.

    As with protobuf, a field given as None counts as unset, and an unset message field reads as
    an empty message (so `request.trace_context.trace_parent` is "" when the host sent none).
    """

    FIELDS: ClassVar[dict[str, Callable[[], Any]]] = {}
    ONEOFS: ClassVar[dict[str, tuple[str, ...]]] = {}

    def __init__(self, **values: Any) -> None:
        unknown = set(values) - set(self.FIELDS)
        if unknown:
            raise TypeError(f"{type(self).__name__} has no field {sorted(unknown)}")
        self._present: list[str] = []
        for name, value in values.items():
            if value is not None:
                setattr(self, name, value)

    def __getattr__(self, name: str) -> Any:
        """An unset field: its default, made on first read (messages nest, so never all at once)."""
        factory = type(self).FIELDS.get(name)
        if factory is None:
            raise AttributeError(name)
        value = factory()
        object.__setattr__(self, name, value)
        return value

    def __setattr__(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)
        present = self.__dict__.get("_present")
        if present is not None and name in self.FIELDS:
            if name in present:
                present.remove(name)
            present.append(name)

    def WhichOneof(self, group: str) -> str | None:  # the protobuf method name
        members = self.ONEOFS[group]
        for name in reversed(self._present):
            if name in members:
                return name
        return None

    def HasField(self, name: str) -> bool:  # the protobuf method name
        return name in self._present

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._present)
        return f"{type(self).__name__}({shown})"


def _fields(*names: str, **factories: Callable[[], Any]) -> dict[str, Callable[[], Any]]:
    """Scalar fields (default "") by name, other fields with their default factory."""
    return {**{name: str for name in names}, **factories}


# --- common ---------------------------------------------------------------------------------------

class RpcException(Message):
    FIELDS = _fields("source", "stack_trace", "message", "type", is_user_exception=bool)


class StatusResult(Message):
    Failure, Success, Cancelled = 0, 1, 2
    FIELDS = _fields("result", status=int, exception=RpcException, logs=_empty_list)


class NullableString(Message):
    FIELDS = _fields("value")


class NullableBool(Message):
    FIELDS = {"value": bool}


class NullableDouble(Message):
    FIELDS = {"value": float}


class NullableTimestamp(Message):
    FIELDS = {"value": lambda: None}


class RpcHttpCookie(Message):
    class SameSite:
        Lax, Strict, ExplicitNone = 1, 2, 3

    FIELDS = _fields("name", "value", domain=NullableString, path=NullableString, expires=NullableTimestamp,
                     secure=NullableBool, http_only=NullableBool, same_site=int, max_age=NullableDouble)


setattr(RpcHttpCookie.SameSite, "None", 0)  # a member named None, as in the protocol


class ModelBindingData(Message):
    """What the host sends for a binding whose SDK type the worker builds itself (deferred binding)."""

    FIELDS = _fields("version", "source", "content_type", content=bytes)


class CollectionModelBindingData(Message):
    FIELDS = {"model_binding_data": _empty_list}


class CollectionString(Message):
    FIELDS = {"string": _empty_list}


class CollectionBytes(Message):
    FIELDS = {"bytes": _empty_list}


class CollectionDouble(Message):
    FIELDS = {"double": _empty_list}


class CollectionSInt64(Message):
    FIELDS = {"sint64": _empty_list}


class TypedData(Message):
    ONEOFS = {"data": ("string", "json", "bytes", "stream", "http", "int", "double", "collection_bytes",
                       "collection_string", "collection_double", "collection_sint64", "model_binding_data",
                       "collection_model_binding_data")}
    FIELDS = _fields("string", "json", bytes=bytes, stream=bytes, http=lambda: RpcHttp(), int=int, double=float,
                     collection_bytes=CollectionBytes, collection_string=CollectionString,
                     collection_double=CollectionDouble, collection_sint64=CollectionSInt64,
                     model_binding_data=ModelBindingData,
                     collection_model_binding_data=CollectionModelBindingData)


class RpcHttp(Message):
    FIELDS = _fields("method", "url", "status_code", headers=_empty_map, body=TypedData, params=_empty_map,
                     query=_empty_map, enable_content_negotiation=bool, cookies=_empty_list,
                     identities=_empty_list, nullable_headers=_empty_map, nullable_params=_empty_map,
                     nullable_query=_empty_map)


class RpcSharedMemory(Message):
    FIELDS = _fields("name", offset=int, count=int, type=int)


class ParameterBinding(Message):
    ONEOFS = {"rpc_data": ("data", "rpc_shared_memory")}
    FIELDS = _fields("name", data=TypedData, rpc_shared_memory=RpcSharedMemory)


# --- worker init and indexing ---------------------------------------------------------------------

class WorkerInitRequest(Message):
    FIELDS = _fields("host_version", "worker_directory", "function_app_directory", capabilities=_empty_map,
                     log_categories=_empty_map)


class WorkerMetadata(Message):
    FIELDS = _fields("runtime_name", "runtime_version", "worker_version", "worker_bitness",
                     custom_properties=_empty_map)


class WorkerInitResponse(Message):
    FIELDS = _fields("worker_version", capabilities=_empty_map, result=StatusResult, worker_metadata=WorkerMetadata)


class FunctionsMetadataRequest(Message):
    FIELDS = _fields("function_app_directory")


class BindingInfo(Message):
    out, inout = 1, 2
    undefined, string, binary, stream = 0, 1, 2, 3
    FIELDS = _fields("type", direction=int, data_type=int, properties=_empty_map)


setattr(BindingInfo, "in", 0)  # `in` is a keyword: the direction is set by name


class RpcRetryOptions(Message):
    FIELDS = _fields("retry_strategy", max_retry_count=int, delay_interval=lambda: None,
                     minimum_interval=lambda: None, maximum_interval=lambda: None)


class RpcFunctionMetadata(Message):
    FIELDS = _fields("name", "directory", "script_file", "entry_point", "language", "function_id",
                     bindings=_empty_map, is_proxy=bool, status=StatusResult, raw_bindings=_empty_list,
                     managed_dependency_enabled=bool, retry_options=RpcRetryOptions, properties=_empty_map)


class FunctionMetadataResponse(Message):
    FIELDS = {"function_metadata_results": _empty_list, "result": StatusResult,
              "use_default_metadata_indexing": bool}


class FunctionLoadRequest(Message):
    FIELDS = _fields("function_id", metadata=RpcFunctionMetadata, managed_dependency_enabled=bool)


class FunctionLoadResponse(Message):
    FIELDS = _fields("function_id", result=StatusResult, is_dependency_downloaded=bool)


# --- invocation -----------------------------------------------------------------------------------

class RpcTraceContext(Message):
    FIELDS = _fields("trace_parent", "trace_state", attributes=_empty_map)


class RetryContext(Message):
    FIELDS = {"retry_count": int, "max_retry_count": int, "exception": RpcException}


class InvocationRequest(Message):
    FIELDS = _fields("invocation_id", "function_id", input_data=_empty_list, trigger_metadata=_empty_map,
                     trace_context=RpcTraceContext, retry_context=RetryContext)


class InvocationResponse(Message):
    FIELDS = _fields("invocation_id", output_data=_empty_list, return_value=TypedData, result=StatusResult)


class StreamingMessage(Message):
    ONEOFS = {"content": ("worker_init_request", "functions_metadata_request", "function_load_request",
                          "invocation_request")}
    FIELDS = _fields("request_id", worker_init_request=WorkerInitRequest,
                     functions_metadata_request=FunctionsMetadataRequest,
                     function_load_request=FunctionLoadRequest, invocation_request=InvocationRequest)


@dataclass
class WorkerRequest:
    """The envelope the library's handlers take: the host's message and the worker's own properties
    (`protos`, the module of message classes; `host`, the address of the host for HTTP streaming)."""

    name: str
    request: StreamingMessage
    properties: Mapping[str, Any] = field(default_factory=dict)


# --- values in and out ----------------------------------------------------------------------------

def typed(value: Any) -> TypedData:
    """A trigger-metadata value as the host sends it: strings as string, everything else as JSON."""
    if isinstance(value, str):
        return TypedData(string=value)
    if isinstance(value, bytes | bytearray):
        return TypedData(bytes=bytes(value))
    return TypedData(json=json.dumps(value, default=str))


def plain(data: TypedData | None) -> Any:
    """The Python value of what the worker sent back (JSON parsed, collections as lists)."""
    kind = data.WhichOneof("data") if data is not None else None
    if kind is None or data is None:
        return None
    value = getattr(data, kind)
    if kind == "json":
        return json.loads(value)
    if kind.startswith("collection_"):
        return list(getattr(value, kind.removeprefix("collection_")))
    return value
