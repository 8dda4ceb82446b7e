"""The app as the host indexes it: every function, its trigger, input and output bindings.

Everything comes from the worker's answer to the functions-metadata request: the `raw_bindings`
that Azure's host reads from the same library. Nothing is taken from a list of names, so a
function (or route, or binding) that the app declares is served without touching the host.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from typing import Any

from devtools.host import rpc
from devtools.host.config import HostConfigError, resolve_setting_references

HTTP_TRIGGER, BLOB_TRIGGER, QUEUE_TRIGGER, TIMER_TRIGGER = "httpTrigger", "blobTrigger", "queueTrigger", "timerTrigger"
SUPPORTED_TRIGGERS = {HTTP_TRIGGER, BLOB_TRIGGER, QUEUE_TRIGGER, TIMER_TRIGGER}
SUPPORTED_OUTPUTS = {"queue", "blob", "table", "http"}
SUPPORTED_INPUTS = {"blob"}
RETURN_BINDING = "$return"
DEFAULT_CONNECTION = "AzureWebJobsStorage"


def _plain(value: Any) -> Any:
    """Binding properties with enums turned into the strings of function.json."""
    if isinstance(value, enum.Enum):
        return value.value if isinstance(value.value, str) else value.name
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


@dataclass(frozen=True)
class Binding:
    name: str
    type: str
    direction: str
    properties: dict[str, Any]

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Binding:
        properties = {key: _plain(value) for key, value in raw.items()}
        for key, value in properties.items():
            if isinstance(value, str) and key not in {"name", "type", "direction"}:
                properties[key] = resolve_setting_references(value)
        direction = str(properties.get("direction", "IN")).upper()
        return cls(name=properties["name"], type=properties["type"], direction=direction, properties=properties)

    @property
    def connection(self) -> str:
        return self.properties.get("connection") or DEFAULT_CONNECTION

    @property
    def deferred(self) -> bool:
        """The worker builds an SDK type itself: the host sends `ModelBindingData`, not the content."""
        return bool((self.properties.get("properties") or {}).get("SupportsDeferredBinding"))

    def get(self, key: str, default: Any = None) -> Any:
        return self.properties.get(key, default)


@dataclass
class FunctionSpec:
    name: str
    trigger: Binding
    outputs: list[Binding]
    inputs: list[Binding]
    worker_function_id: str  # the id under which the worker loaded it
    directory: str = ""

    @property
    def function_id(self) -> str:
        """The id the real host uses in receipts, locks and logs."""
        return f"Host.Functions.{self.name}"


def spec_of(metadata: rpc.RpcFunctionMetadata) -> FunctionSpec:
    """A function as the host serves it, from the worker's metadata for it."""
    name = metadata.name
    bindings = [Binding.from_dict(json.loads(raw)) for raw in metadata.raw_bindings]
    triggers = [b for b in bindings if b.type.endswith("Trigger")]
    if len(triggers) != 1:
        raise HostConfigError(f"function {name} must have exactly one trigger, has {len(triggers)}")
    trigger = triggers[0]
    if trigger.type not in SUPPORTED_TRIGGERS:
        raise HostConfigError(f"function {name}: trigger type {trigger.type} is not supported by the local host")
    others = [b for b in bindings if b is not trigger]
    for binding in others:
        supported = SUPPORTED_OUTPUTS if binding.direction == "OUT" else SUPPORTED_INPUTS \
            if binding.direction == "IN" else set()
        if binding.type not in supported:
            raise HostConfigError(
                f"function {name}: binding {binding.name} ({binding.type}, {binding.direction}) is not supported "
                "by the local host; supported are queue, blob and table outputs and blob inputs")
    return FunctionSpec(name=name, trigger=trigger, outputs=[b for b in others if b.direction == "OUT"],
                        inputs=[b for b in others if b.direction == "IN"],
                        worker_function_id=metadata.function_id, directory=metadata.directory)


def index(metadata: list[rpc.RpcFunctionMetadata]) -> list[FunctionSpec]:
    specs = [spec_of(function) for function in metadata]
    names = [spec.name.lower() for spec in specs]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise HostConfigError(f"function names must be unique (case-insensitive): {sorted(duplicates)}")
    return specs
