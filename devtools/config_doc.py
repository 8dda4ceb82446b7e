"""Write docs/CONFIGURATION.md from the fields of shared.config.Settings and the app settings in infra/.

    python -m devtools.config_doc          # rewrite the page
    python -m devtools.config_doc --check  # exit 1 if the page is out of date
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, Literal, get_args, get_origin

from pydantic import SecretStr
from pydantic.fields import FieldInfo

from devtools import infra_model
from shared.config import SETTINGS, IdentityConnection, Settings, http_url

DOC = infra_model.ROOT / "docs" / "CONFIGURATION.md"

_HEADER = """# Configuration

Every app setting the code reads, generated from the fields of the settings model
(`shared.config.Settings`) and the app settings in `infra/modules/function-app.bicep` by
`python -m devtools.config_doc` (a test fails when this page is out of date). Locally the settings
come from the environment and `local.settings.json` (`Values`); in Azure the Bicep sets every one of
them, and the secrets are Key Vault references. An empty value means the default. The app validates
every setting at its first use in a process and names each bad one, with the reason, in one error.

`AzureWebJobsStorage` and `DocumentStorage` are connection names. Locally each holds a connection
string. In Azure each is identity-based: `<name>__blobServiceUri`, `__queueServiceUri`,
`__tableServiceUri`, `__credential=managedidentity` and `__clientId` (the user-assigned identity).

| setting | type | default | secret | in Azure | description |
|---|---|---|---|---|---|
"""


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _azure_value(name: str, settings: dict[str, Any]) -> str:
    if name not in settings:
        prefixed = sorted(key for key in settings if key.startswith(f"{name}__"))
        return "identity-based: " + ", ".join(f"`{key}`" for key in prefixed) if prefixed else "**not set**"
    value = settings[name]
    secret = infra_model.key_vault_secret(value)
    if secret:
        return f"Key Vault secret `{secret}`"
    if isinstance(value, str) and value in infra_model.parameters(infra_model.FUNCTION_APP):
        return f"Bicep parameter `{value}`"
    if isinstance(value, str):
        return f"`{value}`" if value else "(empty)"
    return "from a Bicep parameter"


def _type(info: FieldInfo) -> str:
    """What a value must be, from the field's annotation and constraints."""
    annotation = info.annotation
    options = get_args(annotation)
    if get_origin(annotation) is Literal:
        return " or ".join(f"`{option}`" for option in options)
    if IdentityConnection in options:
        return "connection"
    if get_origin(annotation) is tuple:
        return "comma-separated list"
    if any(getattr(item, "func", None) is http_url for item in info.metadata):
        return "http(s) URL"
    base = next((option for option in (annotation, *options) if option in _TYPE_NAMES), str)
    bounds = [f"{symbol} {getattr(item, attribute):g}" for item in info.metadata
              for attribute, symbol in _BOUNDS if getattr(item, attribute, None) is not None]
    return " ".join([_TYPE_NAMES[base], *([", ".join(bounds)] if bounds else [])])


_TYPE_NAMES: dict[Any, str] = {int: "integer", float: "number", bool: "true/false", str: "text", SecretStr: "text"}
_BOUNDS = (("gt", ">"), ("ge", "≥"), ("lt", "<"), ("le", "≤"))


def render() -> str:
    settings = infra_model.app_settings()
    rows = [
        f"| `{s.name}` | {_cell(_type(info))} | {f'`{_cell(s.default)}`' if s.default else '—'} "
        f"| {'yes' if s.secret else ''} | {_cell(_azure_value(s.name, settings))} | {_cell(s.description)} |"
        for s, info in zip(SETTINGS, Settings.model_fields.values(), strict=True)
    ]
    return _HEADER + "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the page is out of date")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = DOC.read_text(encoding="utf-8") if DOC.exists() else ""
        if current != text:
            print(f"{DOC.relative_to(infra_model.ROOT)} is out of date: run python -m devtools.config_doc")
            return 1
        return 0
    DOC.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
