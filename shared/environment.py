"""The process environment as app settings see it, without pydantic: what must be read while the worker
indexes the app.

`shared.config.Settings` is the one declaration and the one validated reader of settings. This module
holds what it shares with the one read that happens before any invocation: a trigger decorator's
argument (`shared.bindings`), fixed when `function_app` is imported. Importing pydantic-settings there
would add about 0.1 s of CPU to every cold start (`bench.startup`); the first invocation builds the
validated model anyway and reports a bad value with every other one.
"""

from __future__ import annotations

import logging
import os

_log = logging.getLogger("shared.config")

# App Service puts the reference text itself in the environment when it cannot resolve a Key Vault
# reference (no access yet, secret missing, vault unreachable). Such a value is no setting: used as
# one it would end up in URLs or serve as a secret, so it reads as unset.
_KEY_VAULT_REFERENCE_PREFIX = "@microsoft.keyvault("
_unresolved_reported: set[str] = set()


def is_unresolved_key_vault_reference(value: str | None) -> bool:
    return value is not None and value.lstrip().lower().startswith(_KEY_VAULT_REFERENCE_PREFIX)


def report_unresolved(name: str) -> None:
    if name not in _unresolved_reported:  # once per process: settings may be rebuilt on every invocation
        _unresolved_reported.add(name)
        # The structured-log shape of shared.logging.log_event, without importing it (it may import this module).
        _log.warning("config.unresolved_key_vault_reference", extra={"fields": {
            "setting": name, "effect": "treated as unset",
            "check": "the secret exists and the app's identity may read it (Key Vault Secrets User)"}})


def index_time_value(name: str) -> str | None:
    """The raw value of a setting a decorator needs at import; None when unset, empty or unresolved."""
    value = os.environ.get(name)
    if is_unresolved_key_vault_reference(value):
        report_unresolved(name)
        return None
    return value or None
