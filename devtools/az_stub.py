"""A stand-in for `az` (and `sleep`) for the hooks' dry run: records each call, answers with canned output.

Run as `python az_stub.py az|sleep ARGS...` through the wrappers devtools/hook_dry_run.py puts on
PATH. It imports nothing from the project, so the hooks see a plain executable. State lives in the
directory AZ_STUB_STATE:

  calls.jsonl      one {"program", "args"} object per call, in order
  bodies/NAME.json the request body of each `az rest --method put`, by subscription name
  secrets/NAME     the length of each secret written (never the value)

Behaviour is set by environment variables, so one test can play several first-run situations:

  AZ_STUB_KEY_VAULT_FORBIDDEN   how many Key Vault calls answer 403 before access "arrives" (default 0)
  AZ_STUB_BLOBS_KEY_AFTER       how many `functionapp keys list` calls find no blobs_extension key yet (default 0)
  AZ_STUB_SUBSCRIPTION_STATES   provisioning states a GET of a subscription returns in turn (default
                                "Creating Succeeded"; the last one repeats)
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

BLOBS_KEY = "stub-blobs-extension-key"


def _state() -> Path:
    return Path(os.environ["AZ_STUB_STATE"])


def _count(name: str) -> int:
    """How many times `name` was counted before; counts this time."""
    counter = _state() / "counters" / name
    counter.parent.mkdir(parents=True, exist_ok=True)
    seen = int(counter.read_text()) if counter.exists() else 0
    counter.write_text(str(seen + 1))
    return seen


def _option(args: list[str], *names: str) -> str | None:
    for index, arg in enumerate(args[:-1]):
        if arg in names:
            return args[index + 1]
    return None


def _fail(message: str) -> int:
    print(f"ERROR: {message}", file=sys.stderr)
    return 1


def _key_vault(args: list[str]) -> int:
    if _count("key-vault") < int(os.environ.get("AZ_STUB_KEY_VAULT_FORBIDDEN", "0")):
        return _fail("(Forbidden) Caller is not authorized to perform action on resource.\n"
                     'Inner error: {"code": "ForbiddenByRbac"}')
    name = _option(args, "--name", "-n") or ""
    stored = _state() / "secrets" / name
    if args[2] == "show":
        if not stored.exists():
            return _fail(f"(SecretNotFound) A secret with (name/id) {name} was not found in this key vault.")
        print(f"https://vault.example/secrets/{name}/0")
        return 0
    if args[2] == "set":
        value = Path(_option(args, "--file", "-f") or "").read_bytes()
        stored.parent.mkdir(parents=True, exist_ok=True)
        stored.write_text(str(len(value)))
        return 0
    return _fail(f"stub: unexpected keyvault call {args}")


def _rest(args: list[str]) -> int:
    method = _option(args, "--method", "-m") or "get"
    url = _option(args, "--url", "--uri", "-u") or ""
    name = url.split("/eventSubscriptions/", 1)[-1].split("?", 1)[0]
    if method == "put":
        body = _option(args, "--body", "-b") or ""
        bodies = _state() / "bodies"
        bodies.mkdir(parents=True, exist_ok=True)
        (bodies / f"{name}.json").write_text(Path(body.removeprefix("@")).read_text())
        return 0
    if method == "get":
        states = os.environ.get("AZ_STUB_SUBSCRIPTION_STATES", "Creating Succeeded").split()
        print(states[min(_count(f"get-{name}"), len(states) - 1)])
        return 0
    return _fail(f"stub: unexpected rest call {args}")


def main(program: str, args: list[str]) -> int:
    with (_state() / "calls.jsonl").open("a", encoding="utf-8") as calls:
        calls.write(json.dumps({"program": program, "args": args}) + "\n")
    if program == "sleep":
        return 0
    if args[:2] == ["keyvault", "secret"]:
        return _key_vault(args)
    if args[:3] == ["functionapp", "keys", "list"]:
        if _count("keys-list") >= int(os.environ.get("AZ_STUB_BLOBS_KEY_AFTER", "0")):
            print(BLOBS_KEY)
        return 0
    if args[:1] == ["rest"]:
        return _rest(args)
    return _fail(f"stub: no canned answer for az {' '.join(args)}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2:]))
