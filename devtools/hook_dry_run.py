"""Run the azd hooks (scripts/post-provision.sh, scripts/post-deploy.sh) against a stub `az`.

Nothing reaches Azure: `az` and `sleep` on PATH are devtools/az_stub.py, which records each call and
answers with canned output. The run shows, in order, every command the hooks would send during
`azd up`, and the Event Grid request bodies they would PUT.

    python -m devtools.hook_dry_run              # a first deploy, Key Vault access arriving late
    python -m devtools.hook_dry_run --again      # the same, then the hooks once more (nothing rewritten)
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STUB = Path(__file__).resolve().parent / "az_stub.py"
HOOKS = ("post-provision.sh", "post-deploy.sh")
SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
RESOURCE_GROUP = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-dryrun"
# What `azd provision` writes to the environment (infra/main.bicep's outputs), for a made-up deployment.
AZD_ENVIRONMENT = {
    "AZURE_RESOURCE_GROUP": "rg-dryrun",
    "AZURE_FUNCTION_APP_NAME": "func-dryrun",
    "AZURE_FUNCTION_APP_HOSTNAME": "func-dryrun.azurewebsites.net",
    "AZURE_KEY_VAULT_NAME": "kv-dryrun",
    "EVENT_GRID_SYSTEM_TOPIC_ID": f"{RESOURCE_GROUP}/providers/Microsoft.EventGrid/systemTopics/evgt-dryrun",
    "DOCUMENT_STORAGE_ACCOUNT_ID": f"{RESOURCE_GROUP}/providers/Microsoft.Storage/storageAccounts/stdryrun",
    "EVENT_GRID_DEADLETTER_CONTAINER": "eventgrid-deadletter",
    # A pipeline passes the Connective user this way; the hook asks for it when it is absent.
    "CONNECTIVE_USERNAME": "api-user@example.com",
    "CONNECTIVE_PASSWORD": "dry-run-password",
}


@dataclass(frozen=True)
class HookRun:
    hook: str
    returncode: int
    output: str
    calls: list[tuple[str, list[str]]]  # (program, args) in order


class StubAz:
    """A directory holding the stub `az` and `sleep`, and the stub's recorded state."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.bin = directory / "bin"
        self.state = directory / "state"
        self.bin.mkdir(parents=True, exist_ok=True)
        self.state.mkdir(parents=True, exist_ok=True)
        for program in ("az", "sleep"):
            wrapper = self.bin / program
            command = f"{shlex.quote(sys.executable)} {shlex.quote(str(STUB))} {program}"
            wrapper.write_text(f'#!/bin/sh\nexec {command} "$@"\n')
            wrapper.chmod(0o755)

    def calls(self) -> list[tuple[str, list[str]]]:
        log = self.state / "calls.jsonl"
        if not log.exists():
            return []
        return [(entry["program"], entry["args"]) for entry in map(json.loads, log.read_text().splitlines())]

    def bodies(self) -> dict[str, dict[str, object]]:
        """The request body of each Event Grid subscription PUT, by subscription name."""
        return {path.stem: json.loads(path.read_text()) for path in sorted((self.state / "bodies").glob("*.json"))}

    def secrets_written(self) -> dict[str, int]:
        """The length of each secret the hooks wrote, by name."""
        return {path.name: int(path.read_text()) for path in sorted((self.state / "secrets").glob("*"))}

    def run(self, hook: str, environment: Mapping[str, str] | None = None) -> HookRun:
        """Run one hook as azd does (with sh), the stub first on PATH."""
        before = len(self.calls())
        env = {"PATH": f"{self.bin}{os.pathsep}{os.environ.get('PATH', '')}", "HOME": str(self.directory),
               "AZ_STUB_STATE": str(self.state), **AZD_ENVIRONMENT, **(environment or {})}
        shell = shutil.which("sh") or "/bin/sh"
        result = subprocess.run([shell, str(ROOT / "scripts" / hook)], env=env, cwd=ROOT, capture_output=True,
                                text=True, stdin=subprocess.DEVNULL, timeout=120, check=False)
        return HookRun(hook, result.returncode, result.stdout + result.stderr, self.calls()[before:])


def first_deploy(stub: StubAz, environment: Mapping[str, str] | None = None) -> list[HookRun]:
    """Both hooks in azd's order; post-deploy runs only if post-provision succeeded (as with azd)."""
    runs = [stub.run(HOOKS[0], environment)]
    if runs[0].returncode == 0:
        runs.append(stub.run(HOOKS[1], environment))
    return runs


# A first deploy as it often goes: the deployer's new Key Vault role needs two retries, the host's
# key appears on the second look, and each subscription is still being validated at the first GET.
FIRST_DEPLOY = {"AZ_STUB_KEY_VAULT_FORBIDDEN": "2", "AZ_STUB_BLOBS_KEY_AFTER": "1"}


def _print(runs: Sequence[HookRun]) -> None:
    for run in runs:
        print(f"## {run.hook} (exit {run.returncode})")
        for program, args in run.calls:
            print("  " + shlex.join([program, *args]))
        print("  output: " + run.output.strip().replace("\n", "\n          "))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--again", action="store_true", help="run both hooks a second time")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="hook-dry-run-") as directory:
        stub = StubAz(Path(directory))
        runs = first_deploy(stub, FIRST_DEPLOY)
        if args.again and all(run.returncode == 0 for run in runs):
            runs += first_deploy(stub)
        _print(runs)
        for name, body in stub.bodies().items():
            print(f"## PUT body of {name}")
            print(json.dumps(body, indent=2))
        return max(run.returncode for run in runs)


if __name__ == "__main__":
    sys.exit(main())
