"""Read the Bicep in infra/ as data (with pycep-parser), for the infra tests and the settings doc.

pycep-parser checks syntax only: it neither compiles nor type-checks Bicep.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

from pycep import BicepParser

ROOT = Path(__file__).resolve().parent.parent
INFRA = ROOT / "infra"
FUNCTION_APP = INFRA / "modules" / "function-app.bicep"
MAIN = INFRA / "main.bicep"

_INTERPOLATION = re.compile(r"\$\{(\w+)\}")
_KEY_VAULT_REFERENCE = re.compile(
    r"^@Microsoft\.KeyVault\((?:VaultName=[^;]+;SecretName=(?P<name>[A-Za-z0-9-]+)"
    r"|SecretUri=https://[^/]+/secrets/(?P<uri_name>[A-Za-z0-9-]+)(?:/[^)]*)?)\)$"
)


def bicep_files() -> list[Path]:
    return sorted(INFRA.rglob("*.bicep"))


@cache
def parse(path: Path) -> dict[str, Any]:
    result: dict[str, Any] = dict(BicepParser().parse(text=path.read_text(encoding="utf-8")))
    return result


def variables(path: Path) -> dict[str, Any]:
    return {name: var["value"] for name, var in (parse(path).get("variables") or {}).items()}


def parameters(path: Path) -> set[str]:
    return set(parse(path).get("parameters") or {})


def resolve(value: Any, path: Path) -> Any:
    """Substitute the file's own string variables into an interpolated string, one level deep."""
    if not isinstance(value, str):
        return value
    known = variables(path)
    return _INTERPOLATION.sub(
        lambda m: known[m.group(1)] if isinstance(known.get(m.group(1)), str) else m.group(0), value
    )


def app_settings() -> dict[str, Any]:
    """The function app's settings as the Bicep writes them (variables resolved)."""
    for resource in parse(FUNCTION_APP)["resources"].values():
        config = resource["config"]
        if resource["type"] == "Microsoft.Web/sites/config" and config.get("name") == "appsettings":
            return {name: resolve(value, FUNCTION_APP) for name, value in config["properties"].items()}
    raise LookupError(f"no sites/config 'appsettings' resource in {FUNCTION_APP}")


def key_vault_secret(value: Any) -> str | None:
    """The secret name if the value is a Key Vault reference, else None."""
    match = _KEY_VAULT_REFERENCE.match(value) if isinstance(value, str) else None
    return (match.group("name") or match.group("uri_name")) if match else None


def registered_functions() -> list[Any]:
    """The function app's functions as the worker indexes them (azure.functions Function objects).

    Built from the app's function builders the way `FunctionApp.get_functions()` builds them, without
    its duplicate-name bookkeeping, which makes a second call in the same process fail.
    """
    import function_app

    app = function_app.app
    return [builder.build(app.auth_level) for builder in app._function_builders]
