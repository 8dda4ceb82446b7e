"""Write docs/CONFIGURATION.md from shared.config.SETTINGS and the app settings in infra/.

    python -m devtools.config_doc          # rewrite the page
    python -m devtools.config_doc --check  # exit 1 if the page is out of date
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from devtools import infra_model
from shared.config import SETTINGS

DOC = infra_model.ROOT / "docs" / "CONFIGURATION.md"

_HEADER = """# Configuration

Every app setting the code reads, generated from `shared.config.SETTINGS` and the app settings in
`infra/modules/function-app.bicep` by `python -m devtools.config_doc` (a test fails when this page
is out of date). Locally the settings come from the environment and `local.settings.json`
(`Values`); in Azure the Bicep sets every one of them, and the secrets are Key Vault references.

`AzureWebJobsStorage` and `DocumentStorage` are connection names. Locally each holds a connection
string. In Azure each is identity-based: `<name>__blobServiceUri`, `__queueServiceUri`,
`__tableServiceUri`, `__credential=managedidentity` and `__clientId` (the user-assigned identity).

| setting | default | secret | in Azure | description |
|---|---|---|---|---|
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


def render() -> str:
    settings = infra_model.app_settings()
    rows = [
        f"| `{s.name}` | {f'`{_cell(s.default)}`' if s.default else '—'} | {'yes' if s.secret else ''} "
        f"| {_cell(_azure_value(s.name, settings))} | {_cell(s.description)} |"
        for s in SETTINGS
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
