"""Function and master keys of the local host (settings HOST_FUNCTION_KEYS and HOST_MASTER_KEY).

They are settings of the host, not of the app, so they are read here and not through
shared.config. A key that is not set is generated at start and printed.
"""

from __future__ import annotations

import hmac
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

FUNCTION_KEYS_SETTING = "HOST_FUNCTION_KEYS"
MASTER_KEY_SETTING = "HOST_MASTER_KEY"

ANONYMOUS, FUNCTION, ADMIN = "anonymous", "function", "admin"
_RANK = {ANONYMOUS: 0, FUNCTION: 1, ADMIN: 2}


def _new_key() -> str:
    return secrets.token_urlsafe(30)


@dataclass(frozen=True)
class HostKeys:
    function_keys: tuple[str, ...]
    master_key: str
    generated: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls, environ: Mapping[str, str] | None = None) -> HostKeys:
        environ = os.environ if environ is None else environ
        function_keys = tuple(k.strip() for k in environ.get(FUNCTION_KEYS_SETTING, "").split(",") if k.strip())
        master_key = environ.get(MASTER_KEY_SETTING, "").strip()
        generated = []
        if not function_keys:
            function_keys = (_new_key(),)
            generated.append(FUNCTION_KEYS_SETTING)
        if not master_key:
            master_key = _new_key()
            generated.append(MASTER_KEY_SETTING)
        return cls(function_keys, master_key, tuple(generated))

    def level_of(self, presented: str | None) -> str:
        """The highest auth level that a presented key satisfies."""
        if not presented:
            return ANONYMOUS
        candidate = presented.encode()
        if hmac.compare_digest(candidate, self.master_key.encode()):
            return ADMIN
        # Compare against every key so the time taken does not say which one matched.
        matched = [hmac.compare_digest(candidate, key.encode()) for key in self.function_keys]
        return FUNCTION if any(matched) else ANONYMOUS

    def allows(self, presented: str | None, required: str) -> bool:
        return _RANK[self.level_of(presented)] >= _RANK[required]
