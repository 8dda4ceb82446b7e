"""The app as the host indexes it: every function, its trigger and output bindings, its parameters.

Everything comes from `app.get_functions()` (the same data the real host's worker indexing reads),
never from a list of names, so a function the app adds is served without touching the host.
"""

from __future__ import annotations

import enum
import importlib
import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import azure.functions as func

from devtools.host.config import HostConfigError, resolve_setting_references

HTTP_TRIGGER, BLOB_TRIGGER, QUEUE_TRIGGER, TIMER_TRIGGER = "httpTrigger", "blobTrigger", "queueTrigger", "timerTrigger"
SUPPORTED_TRIGGERS = {HTTP_TRIGGER, BLOB_TRIGGER, QUEUE_TRIGGER, TIMER_TRIGGER}
SUPPORTED_OUTPUTS = {"queue", "blob", "table", "http"}
RETURN_BINDING = "$return"
CONTEXT_PARAMETER = "context"
DEFAULT_CONNECTION = "AzureWebJobsStorage"


def _plain(value: Any) -> Any:
    """Binding properties with the SDK's enums turned into the strings of function.json."""
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

    def get(self, key: str, default: Any = None) -> Any:
        return self.properties.get(key, default)


@dataclass
class FunctionSpec:
    name: str
    trigger: Binding
    outputs: list[Binding]
    user_function: Callable[..., Any]
    annotations: dict[str, Any] = field(default_factory=dict)
    parameters: tuple[str, ...] = ()
    directory: str = ""
    # Parameters that are neither bindings nor `context`: filled from trigger metadata ({name}, ...).
    metadata_parameters: tuple[str, ...] = ()

    @property
    def function_id(self) -> str:
        """The id the real host uses in receipts, locks and logs."""
        return f"Host.Functions.{self.name}"

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.user_function)

    @property
    def trigger_annotation(self) -> Any:
        return self.annotations.get(self.trigger.name)


def _type_hints(function: Callable[..., Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(function)
    except Exception:  # annotations that cannot be resolved: fall back to what is written
        return dict(getattr(function, "__annotations__", {}))


def _spec_of(function: func.Function, directory: str) -> FunctionSpec:
    name = function.get_function_name()
    bindings = [Binding.from_dict(b.get_dict_repr()) for b in function.get_bindings()]
    triggers = [b for b in bindings if b.type.endswith("Trigger")]
    if len(triggers) != 1:
        raise HostConfigError(f"function {name} must have exactly one trigger, has {len(triggers)}")
    trigger = triggers[0]
    if trigger.type not in SUPPORTED_TRIGGERS:
        raise HostConfigError(f"function {name}: trigger type {trigger.type} is not supported by the local host")
    outputs = [b for b in bindings if b is not trigger]
    for binding in outputs:
        if binding.direction != "OUT" or binding.type not in SUPPORTED_OUTPUTS:
            raise HostConfigError(
                f"function {name}: binding {binding.name} ({binding.type}, {binding.direction}) is not supported "
                "by the local host; supported outputs are queue, blob and table")
    user_function = function.get_user_function()
    parameters = tuple(inspect.signature(user_function).parameters)
    known = {b.name for b in bindings} | {CONTEXT_PARAMETER}
    if trigger.name not in parameters:
        raise HostConfigError(f"function {name}: the trigger parameter `{trigger.name}` is not in its signature")
    return FunctionSpec(name=name, trigger=trigger, outputs=outputs, user_function=user_function,
                        annotations=_type_hints(user_function), parameters=parameters, directory=directory,
                        metadata_parameters=tuple(p for p in parameters if p not in known))


def load_app(module_name: str) -> tuple[list[FunctionSpec], Path]:
    """Import `module_name`, find its `FunctionApp` and index its functions.

    Returns the specs and the script root (the module's folder, where host.json lives).
    """
    module = importlib.import_module(module_name)
    apps = [value for value in vars(module).values() if isinstance(value, func.FunctionApp)]
    if len(apps) != 1:
        raise HostConfigError(f"{module_name} must define exactly one azure.functions.FunctionApp, found {len(apps)}")
    module_file = getattr(module, "__file__", None)
    root = Path(module_file).resolve().parent if module_file else Path.cwd()
    specs = [_spec_of(function, str(root)) for function in apps[0].get_functions()]
    names = [spec.name.lower() for spec in specs]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise HostConfigError(f"function names must be unique (case-insensitive): {sorted(duplicates)}")
    return specs, root
