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
    # Variants of what no public source documents (docs/CONNECTIVE_CONTRACT.md): the product must work under each.
    callback_style: str = field(default="post-json-query", metadata={
        "help": "how a package callback is sent: post-json-query (POST, packageId and packageStatus added to the "
                "query, JSON body), post-json (JSON body only), post-form (form body only), get-package-id (GET, "
                "only packageId in the query), no-status (POST, JSON body with PackageId only)"})
    callback_drop_query: bool = field(default=False, metadata={
        "help": "drop the query string of the registered callback URLs before calling them"})
    notification_style: str = field(default="post-json", metadata={
        "help": "how a new-link request is sent: post-json, post-form, get-query, or bare (POST, no body)"})
    error_message_key: str = field(default="", metadata={
        "help": "the text's name in error bodies: Message or ErrorMessage (empty: Message in an object, "
                "ErrorMessage in an array)"})
    audit_proof_wrapper: bool = field(default=False, metadata={
        "help": "put a wrapper element around <uploads> in audit proofs (the swagger shows none)"})
    audit_proof_uploads: str = field(default="per-document", metadata={
        "help": "one <upload> per document (per-document) or one for the whole upload session (per-session)"})
    list_sort_field: str = field(default="known", metadata={
        "help": "Package List SortField: known (a few names accepted, others 400), refuse (any SortField 400), "
                "ignore"})
    list_status_case: str = field(default="any", metadata={
        "help": "Package List Status: any (filter in any casing), exact (PascalCase only), upper (upper-case "
                "filter and upper-case statuses in the items, as the swagger's example)"})
    delete_draft_conflict: bool = field(default=False, metadata={
        "help": "Delete Package refuses a Draft package with 409"})
    # Behaviour.
    audit_proofs: bool = field(default=True, metadata={"help": "audit-proof feature enabled (CorrelationId needs it)"})
    error_format: str = field(default="object", metadata={"help": "error body form: object or array"})
    max_document_mb: float = field(default=30.0, metadata={
        "help": "largest accepted document in MB (Connective documents 30 MB; 0: no limit)"})
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
        for key, allowed in CHOICES.items():
            if key in staged and staged[key] not in allowed:
                raise ValueError(f"{key} must be one of {', '.join(repr(a) for a in allowed)}")
        for key, value in staged.items():
            setattr(self, key, value)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def copy(self) -> Knobs:
        return dataclasses.replace(self)


CHOICES: dict[str, tuple[str, ...]] = {
    "error_format": ("object", "array"),
    "error_message_key": ("", "Message", "ErrorMessage"),
    "callback_style": ("post-json-query", "post-json", "post-form", "get-package-id", "no-status"),
    "notification_style": ("post-json", "post-form", "get-query", "bare"),
    "audit_proof_uploads": ("per-document", "per-session"),
    "list_sort_field": ("known", "refuse", "ignore"),
    "list_status_case": ("any", "exact", "upper"),
}


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
