"""The `az` commands and flags the azd hooks use, held to a checked list and to azure-cli's own help.

devtools/az_commands.json names every command and flag that scripts/*.sh pass to `az`, with the
azure-cli source that registers it. The hook dry run (devtools/hook_dry_run.py) records the real
calls, and a test keeps the two equal. `--verify-cli` asks an installed azure-cli for each command's
--help and fails on any flag it does not list: that is what would have caught a flag that exists on
one command group and not on another.

    python -m devtools.az_commands --verify-cli .venv-azcli/bin/az
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

CHECKED_LIST = Path(__file__).resolve().parent / "az_commands.json"
# An argument line of `az ... --help`: four spaces, then the option strings, then ':' with the help.
# Markers such as [Required] or [Preview] may stand between them.
_HELP_ARGUMENT = re.compile(r"^ {4}(-[-\w]+(?: -[-\w]+)*)\s+(?:\[[A-Za-z ]+\]\s+)*:")


def checked_list(path: Path = CHECKED_LIST) -> dict[str, dict[str, str]]:
    """Command (words after `az`) -> flag -> the azure-cli source that registers the flag."""
    commands: dict[str, dict[str, str]] = json.loads(path.read_text(encoding="utf-8"))["commands"]
    return commands


def split_call(args: Sequence[str]) -> tuple[str, frozenset[str]]:
    """The command words and the flags of one `az` argument vector (values are dropped)."""
    words: list[str] = []
    for arg in args:
        if arg.startswith("-"):
            break
        words.append(arg)
    flags = frozenset(arg.split("=", 1)[0] for arg in args if arg.startswith("-") and len(arg) > 1
                      and not arg[1:2].isdigit())
    return " ".join(words), flags


def unlisted(calls: Iterable[Sequence[str]], listed: dict[str, dict[str, str]]) -> list[str]:
    """Calls whose command or flags the checked list does not name."""
    problems = []
    for args in calls:
        command, flags = split_call(args)
        if command not in listed:
            problems.append(f"az {command}: command not in {CHECKED_LIST.name}")
            continue
        problems.extend(f"az {command} {flag}: flag not in {CHECKED_LIST.name}"
                        for flag in sorted(flags - set(listed[command])))
    return problems


def help_flags(help_text: str) -> set[str]:
    """Every option string the help text lists, global arguments included."""
    flags: set[str] = set()
    for line in help_text.splitlines():
        match = _HELP_ARGUMENT.match(line)
        if match:
            flags.update(match.group(1).split())
    return flags


def verify_cli(az: str, listed: dict[str, dict[str, str]]) -> list[str]:
    """Flags of the checked list that the installed azure-cli's help does not know."""
    problems = []
    for command, flags in sorted(listed.items()):
        result = subprocess.run([az, *command.split(), "--help"], capture_output=True, text=True, check=False,
                                timeout=300)
        known = help_flags(result.stdout)
        if result.returncode != 0 or not known:
            detail = result.stderr.strip()[:300]
            problems.append(f"az {command}: no help from {az} (exit {result.returncode}): {detail}")
            continue
        problems.extend(f"az {command} {flag}: not in this azure-cli's help" for flag in sorted(set(flags) - known))
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--verify-cli", metavar="AZ", required=True, help="path of the az executable to ask")
    args = parser.parse_args(argv)
    listed = checked_list()
    version = subprocess.run([args.verify_cli, "version", "--query", '"azure-cli"', "-o", "tsv"],
                             capture_output=True, text=True, check=False, timeout=300).stdout.strip()
    problems = verify_cli(args.verify_cli, listed)
    for problem in problems:
        print(problem, file=sys.stderr)
    count = sum(len(flags) for flags in listed.values())
    print(f"az flags: {count} flags of {len(listed)} commands checked against azure-cli {version or '?'}: "
          + ("ok" if not problems else f"{len(problems)} problems"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
