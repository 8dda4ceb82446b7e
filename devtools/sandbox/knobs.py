"""Runtime knobs of the sandbox: one dataclass, filled from the command line and changed at run time.

Every knob is both a CLI flag (`--rate-calls`) and a key of `POST /_sandbox/config` (`rate_calls`).
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Knobs:
    # Throttle: at most rate_calls calls in any sliding window of rate_window seconds per user (0 = off).
    rate_calls: int = field(default=100,
                            metadata={"help": "calls allowed per user in any sliding window (0: no limit)"})
    rate_window: float = field(default=60.0, metadata={"help": "length of the sliding throttle window in seconds"})
    # Signing without a person.
    auto_sign: bool = field(default=False, metadata={"help": "sign (or reject) for every available actor"})
    auto_sign_delay: float = field(default=1.0,
                                   metadata={"help": "sandbox-clock seconds an actor waits before auto-signing"})
    reject_substring: str = field(
        default="reject",
        metadata={"help": "auto-sign rejects when the signer's email or a document name contains this (empty: never)"},
    )
    # Faults, applied to API calls only (never to /_sandbox/).
    fault_500_rate: float = field(default=0.0, metadata={"help": "share of API calls answered 500 without running"})
    fault_503_rate: float = field(default=0.0, metadata={"help": "share of API calls answered 503 without running"})
    hang_rate: float = field(default=0.0, metadata={"help": "share of API calls that run, then hold the answer"})
    hang_seconds: float = field(default=30.0, metadata={"help": "how long a hanging answer is held"})
    latency_ms: float = field(default=0.0, metadata={"help": "latency added to every API call"})
    # Callbacks.
    callback_delay: float = field(default=0.0, metadata={"help": "seconds before each callback is sent"})
    callback_duplicate_rate: float = field(default=0.0, metadata={"help": "share of callbacks sent twice"})
    callback_drop_rate: float = field(default=0.0, metadata={"help": "share of callbacks never sent"})
    callback_reorder: bool = field(default=False, metadata={"help": "hold each callback and swap it with the next one"})
    callback_max_attempts: int = field(default=5, metadata={"help": "delivery attempts per callback (non-2xx retried)"})
    callback_backoff: float = field(default=0.5, metadata={"help": "first retry delay in seconds, doubled per attempt"})
    callback_timeout: float = field(default=10.0, metadata={"help": "read timeout of one callback POST in seconds"})
    # Behaviour.
    audit_proofs: bool = field(default=True, metadata={"help": "audit-proof feature enabled (CorrelationId needs it)"})
    error_format: str = field(default="object", metadata={"help": "error body form: object or array"})
    max_document_mb: float = field(default=0.0, metadata={"help": "largest accepted document in MB (0: no limit)"})
    seed: int | None = field(default=None, metadata={"help": "random seed for faults and callback knobs"})
    public_url: str = field(default="", metadata={"help": "base URL used in ActionUrls (default: the bind address)"})

    def update(self, changes: dict[str, Any]) -> None:
        """Apply a partial update; raises ValueError naming the first bad key or value."""
        fields = {f.name: f for f in dataclasses.fields(self)}
        staged = {}
        for key, value in changes.items():
            if key not in fields:
                raise ValueError(f"unknown knob {key!r}")
            staged[key] = _coerce(key, fields[key].type, value)
        if "error_format" in staged and staged["error_format"] not in ("object", "array"):
            raise ValueError("error_format must be 'object' or 'array'")
        for key, value in staged.items():
            setattr(self, key, value)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def copy(self) -> Knobs:
        return dataclasses.replace(self)


def _coerce(key: str, type_name: object, value: Any) -> Any:
    type_text = str(type_name)
    if type_text.startswith("int | None"):
        return None if value is None else _coerce(key, "int", value)
    if type_text == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no", "on", "off"):
            return value.lower() in ("true", "1", "yes", "on")
        raise ValueError(f"{key} must be a boolean")
    try:
        if type_text == "int":
            if isinstance(value, bool):
                raise TypeError
            return int(value)
        if type_text == "float":
            result = float(value)
            if result < 0 or (key.endswith("_rate") and result > 1):
                raise ValueError
            return result
    except (TypeError, ValueError):
        raise ValueError(f"{key} has a bad value {value!r}") from None
    return str(value)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per knob, named after it (`auto_sign` -> `--auto-sign`)."""
    for knob in dataclasses.fields(Knobs):
        flag = "--" + knob.name.replace("_", "-")
        help_text = f"{knob.metadata['help']} (default: {knob.default})"
        if str(knob.type) == "bool":
            parser.add_argument(flag, dest=knob.name, action=argparse.BooleanOptionalAction, default=None,
                                help=help_text)
        else:
            parser.add_argument(flag, dest=knob.name, default=None, help=help_text)


def from_arguments(args: argparse.Namespace) -> Knobs:
    knobs = Knobs()
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(Knobs) if getattr(args, f.name) is not None}
    knobs.update(given)
    return knobs
