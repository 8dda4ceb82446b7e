"""The azd hooks run against a stub `az`: the order and arguments of their calls, retries, re-runs, failures."""

from __future__ import annotations

import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from devtools import az_commands, hook_dry_run, infra_model
from devtools.az_stub import BLOBS_KEY
from devtools.hook_dry_run import AZD_ENVIRONMENT, FIRST_DEPLOY, StubAz

SECRETS = ["CONNECTIVE-USERNAME", "CONNECTIVE-PASSWORD", "CALLBACK-SECRETS", "WEBHOOK-SIGNING-SECRET"]
TOPIC = AZD_ENVIRONMENT["EVENT_GRID_SYSTEM_TOPIC_ID"]
POST_DEPLOY = infra_model.ROOT / "scripts" / "post-deploy.sh"


@dataclass(frozen=True)
class Subscription:
    name: str
    function: str
    container: str
    suffix: str  # "" for none


def _subscriptions() -> list[Subscription]:
    """The `subscribe NAME FUNCTION CONTAINER SUFFIX` lines of post-deploy.sh, in order."""
    found = []
    for line in POST_DEPLOY.read_text().splitlines():
        if line.startswith("subscribe "):
            found.append(Subscription(*shlex.split(line)[1:5]))
    return found


def _blob_triggers() -> dict[str, str]:
    """Function name -> blob path of every blob trigger the app registers."""
    return {function.get_function_name(): function.get_trigger().path
            for function in infra_model.registered_functions()
            if function.get_trigger().get_binding_name() == "blobTrigger"}


def _subscription_url(name: str) -> str:
    return f"{TOPIC}/eventSubscriptions/{name}?api-version=2022-06-15"


def _show(name: str) -> list[str]:
    return ["keyvault", "secret", "show", "--vault-name", "kv-dryrun", "--name", name, "--query", "id", "-o", "tsv"]


def _set(name: str, file: str) -> list[str]:
    return ["keyvault", "secret", "set", "--vault-name", "kv-dryrun", "--name", name, "--file", file,
            "--encoding", "utf-8", "-o", "none"]


KEYS_LIST = ["functionapp", "keys", "list", "-g", "rg-dryrun", "-n", "func-dryrun",
             "--query", "systemKeys.blobs_extension", "-o", "tsv"]


def _get(name: str) -> list[str]:
    return ["rest", "--method", "get", "--url", _subscription_url(name), "--query", "properties.provisioningState",
            "-o", "tsv"]


@pytest.fixture
def stub(tmp_path: Path) -> StubAz:
    return StubAz(tmp_path)


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> tuple[StubAz, list[hook_dry_run.HookRun]]:
    """One first deploy, shared by the tests that only read what it did."""
    stub = StubAz(tmp_path_factory.mktemp("first-deploy"))
    runs = hook_dry_run.first_deploy(stub, FIRST_DEPLOY)
    assert [run.returncode for run in runs] == [0, 0], "\n".join(run.output for run in runs)
    return stub, runs


@pytest.fixture
def first_deploy(deployed: tuple[StubAz, list[hook_dry_run.HookRun]]) -> list[hook_dry_run.HookRun]:
    return deployed[1]


def test_post_provision_waits_for_key_vault_access_then_writes_each_secret_once(
        deployed: tuple[StubAz, list[hook_dry_run.HookRun]]) -> None:
    stub, first_deploy = deployed
    calls = first_deploy[0].calls
    value_file = next(args[args.index("--file") + 1] for program, args in calls if "set" in args)
    expected = [("az", _show("CONNECTIVE-USERNAME")), ("sleep", ["10"]),
                ("az", _show("CONNECTIVE-USERNAME")), ("sleep", ["20"]),
                ("az", _show("CONNECTIVE-USERNAME")), ("az", _set("CONNECTIVE-USERNAME", value_file))]
    for name in SECRETS[1:]:
        expected += [("az", _show(name)), ("az", _set(name, value_file))]
    assert calls == expected
    written = stub.secrets_written()
    assert sorted(written) == sorted(SECRETS)
    assert written["CONNECTIVE-PASSWORD"] == len(AZD_ENVIRONMENT["CONNECTIVE_PASSWORD"])
    assert written["CALLBACK-SECRETS"] >= 64 and written["WEBHOOK-SIGNING-SECRET"] >= 64  # 48 random bytes
    assert "no access yet" in first_deploy[0].output


def test_post_deploy_waits_for_the_host_key_then_subscribes_both_blob_triggers(
        first_deploy: list[hook_dry_run.HookRun]) -> None:
    calls = first_deploy[1].calls
    put_bodies = [args[args.index("--body") + 1] for program, args in calls if "put" in args]
    assert all(body.startswith("@") for body in put_bodies)
    expected = [("az", KEYS_LIST), ("sleep", ["10"]), ("az", KEYS_LIST)]
    for subscription, body in zip(_subscriptions(), put_bodies, strict=True):
        name = subscription.name
        put = ["rest", "--method", "put", "--url", _subscription_url(name), "--body", body, "-o", "none"]
        expected += [("az", put), ("az", _get(name)), ("sleep", ["10"]), ("az", _get(name))]
    assert calls == expected


def test_subscription_bodies_dead_letter_with_the_topic_identity(
        deployed: tuple[StubAz, list[hook_dry_run.HookRun]]) -> None:
    bodies = deployed[0].bodies()
    subscriptions = _subscriptions()
    assert sorted(bodies) == sorted(s.name for s in subscriptions)
    for subscription in subscriptions:
        properties = bodies[subscription.name]["properties"]
        assert properties["destination"] == {"endpointType": "WebHook", "properties": {"endpointUrl": (
            "https://func-dryrun.azurewebsites.net/runtime/webhooks/blobs?functionName=Host.Functions."
            f"{subscription.function}&code={BLOBS_KEY}")}}
        expected_filter = {"includedEventTypes": ["Microsoft.Storage.BlobCreated"],
                           "subjectBeginsWith": f"/blobServices/default/containers/{subscription.container}/"}
        if subscription.suffix:
            expected_filter["subjectEndsWith"] = subscription.suffix
        assert properties["filter"] == expected_filter
        assert properties["eventDeliverySchema"] == "EventGridSchema"
        assert properties["retryPolicy"] == {"maxDeliveryAttempts": 30, "eventTimeToLiveInMinutes": 1440}
        assert properties["deadLetterWithResourceIdentity"] == {
            "identity": {"type": "SystemAssigned"},
            "deadLetterDestination": {"endpointType": "StorageBlob", "properties": {
                "resourceId": AZD_ENVIRONMENT["DOCUMENT_STORAGE_ACCOUNT_ID"],
                "blobContainerName": "eventgrid-deadletter"}}}
        assert "deadLetterDestination" not in properties  # the key-based form; identity only


def test_every_blob_trigger_has_its_event_grid_subscription() -> None:
    """Flex Consumption runs blob triggers only from Event Grid: a trigger without a subscription never fires."""
    triggers = _blob_triggers()
    assert {"intake_inbox_blob", "intake_batch_manifest"} <= set(triggers)
    subscribed = {s.function: s for s in _subscriptions()}
    for function, path in sorted(triggers.items()):
        container, *_rest = path.split("/")
        last = path.rsplit("/", 1)[-1]
        suffix = "" if "{" in last else "/" + last
        line = f'subscribe <name> {function} {container} {shlex.quote(suffix) if suffix else chr(34) * 2}'
        assert function in subscribed, f"add to scripts/post-deploy.sh: {line}"
        assert (subscribed[function].container, subscribed[function].suffix) == (container, suffix), line
    assert set(subscribed) <= set(triggers), "post-deploy.sh subscribes a function the app does not register"


def test_no_secret_reaches_a_command_line(first_deploy: list[hook_dry_run.HookRun]) -> None:
    for run in first_deploy:
        for _, args in run.calls:
            joined = " ".join(args)
            assert BLOBS_KEY not in joined
            assert AZD_ENVIRONMENT["CONNECTIVE_PASSWORD"] not in joined
            assert AZD_ENVIRONMENT["CONNECTIVE_USERNAME"] not in joined


def test_running_the_hooks_again_rewrites_no_secret(stub: StubAz) -> None:
    assert [run.returncode for run in hook_dry_run.first_deploy(stub)] == [0, 0]
    again = hook_dry_run.first_deploy(stub)
    assert [run.returncode for run in again] == [0, 0]
    assert [args[:3] for _, args in again[0].calls] == [["keyvault", "secret", "show"]] * len(SECRETS)
    assert "already set, kept" in again[0].output
    puts = [args[:3] for _, args in again[1].calls].count(["rest", "--method", "put"])
    assert puts == len(_subscriptions())  # each PUT replaces its subscription


def test_every_az_call_is_on_the_checked_list(first_deploy: list[hook_dry_run.HookRun]) -> None:
    calls = [args for run in first_deploy for program, args in run.calls if program == "az"]
    listed = az_commands.checked_list()
    assert az_commands.unlisted(calls, listed) == []
    used: dict[str, set[str]] = {}
    for args in calls:
        command, flags = az_commands.split_call(args)
        used.setdefault(command, set()).update(flags)
    assert used == {command: set(flags) for command, flags in listed.items()}, "devtools/az_commands.json is stale"


def test_key_vault_that_stays_forbidden_stops_the_hook_with_advice(stub: StubAz) -> None:
    run = stub.run("post-provision.sh", {"AZ_STUB_KEY_VAULT_FORBIDDEN": "99", "KEY_VAULT_RETRY_WAITS": "1 2"})
    assert run.returncode == 1
    assert [program for program, _ in run.calls] == ["az", "sleep", "az", "sleep", "az"]
    assert "Key Vault Secrets Officer" in run.output and "azd hooks run postprovision" in run.output
    assert stub.secrets_written() == {}


def test_an_event_grid_validation_failure_stops_the_hook(stub: StubAz) -> None:
    run = stub.run("post-deploy.sh", {"AZ_STUB_SUBSCRIPTION_STATES": "Creating Failed"})
    assert run.returncode == 1
    first = _subscriptions()[0]
    assert f"could not validate the webhook of {first.function}" in run.output
    assert sorted(stub.bodies()) == [first.name]  # it stops at the first failure


def test_post_deploy_needs_the_topic_id_from_provisioning(stub: StubAz) -> None:
    run = stub.run("post-deploy.sh", {"EVENT_GRID_SYSTEM_TOPIC_ID": ""})
    assert run.returncode != 0 and "EVENT_GRID_SYSTEM_TOPIC_ID" in run.output
    assert run.calls == []


def test_the_topic_id_is_a_provisioning_output() -> None:
    from devtools import infra_model
    outputs = infra_model.parse(infra_model.MAIN)["outputs"]
    assert "EVENT_GRID_SYSTEM_TOPIC_ID" in outputs
    needed = set(AZD_ENVIRONMENT) - {"CONNECTIVE_USERNAME", "CONNECTIVE_PASSWORD"}
    assert needed <= set(outputs), "the hooks read environment values that infra/main.bicep does not output"


def test_dry_run_command_prints_the_calls() -> None:
    import sys
    result = subprocess.run([sys.executable, "-m", "devtools.hook_dry_run"], cwd=hook_dry_run.ROOT,
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    assert "az rest --method put" in result.stdout and "deadLetterWithResourceIdentity" in result.stdout
