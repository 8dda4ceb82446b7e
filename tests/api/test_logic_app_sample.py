"""docs/samples/logic-app-workflow.json works as written.

The workflow answers its caller at once (202 with the package reference and status URL), then
waits for the end of signing with an HTTP Webhook action (no polling), and handles every outcome.
These tests read its structure the way the Logic Apps engine would (scopes, runAfter, references)
and play its calls to the app against the served definition and the real handlers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from shared.webhooks.events import EventType, typed_event
from tests.api.conftest import ApiClient

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "docs" / "samples" / "logic-app-workflow.json"
GUIDE = ROOT / "docs" / "POWER_AUTOMATE.md"
APP = "@{parameters('functionAppUrl')}/api"
# Actions after which a Request trigger's caller has long stopped listening (Logic Apps gives it 120 s).
WAITS = {"HttpWebhook", "ApiConnectionWebhook", "Wait", "Until"}
RUN_AFTER_STATUSES = {"Succeeded", "Failed", "Skipped", "TimedOut"}
_REFERENCE = re.compile(r"\b(?:body|outputs|actions)\('([^']+)'\)")
_PROPERTY_PATH = re.compile(r"body\('([^']+)'\)((?:\?\['[^']+'\])+)")


@dataclass
class Action:
    name: str
    definition: dict[str, Any]
    siblings: dict[str, dict[str, Any]]  # the actions of the same scope, by name
    container: Action | None  # the Switch/If/Scope/Until holding this action


def _definition() -> dict[str, Any]:
    return json.loads(SAMPLE.read_text(encoding="utf-8"))["definition"]


def _scopes(definition: dict[str, Any]) -> Iterator[dict[str, dict[str, Any]]]:
    """Each list of actions nested in a container action."""
    for key in ("actions",):
        if key in definition:
            yield definition[key]
    for case in definition.get("cases", {}).values():
        yield case["actions"]
    for branch in ("default", "else"):
        if branch in definition:
            yield definition[branch]["actions"]


def _actions() -> dict[str, Action]:
    found: dict[str, Action] = {}

    def visit(actions: dict[str, dict[str, Any]], container: Action | None) -> None:
        for name, body in actions.items():
            assert name not in found, f"two actions are named {name}"
            found[name] = Action(name, body, actions, container)
            for scope in _scopes({k: v for k, v in body.items() if k != "inputs"}):
                visit(scope, found[name])

    visit(_definition()["actions"], None)
    return found


def _before(action: Action, actions: dict[str, Action]) -> set[str]:
    """The actions that have run whenever `action` runs: its runAfter chain, then its container's."""
    done: set[str] = set()
    pending = list(action.definition.get("runAfter", {}))
    while pending:
        name = pending.pop()
        if name not in done:
            done.add(name)
            pending.extend(action.siblings[name].get("runAfter", {}))
    if action.container is not None:
        done |= {action.container.name} | _before(action.container, actions)
    return done


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _own_strings(action: Action) -> Iterator[str]:
    """The expressions of the action itself, not of the actions nested in it."""
    yield from _strings({k: v for k, v in action.definition.items() if k not in ("actions", "cases", "default",
                                                                                   "else")})


def _is_wait(action: Action) -> bool:
    kind = action.definition["type"]
    async_http = kind == "Http" and action.definition.get("operationOptions") != "DisableAsyncPattern"
    return kind in WAITS or async_http


def test_every_run_after_and_reference_resolves() -> None:
    actions = _actions()
    assert actions
    for action in actions.values():
        for name, statuses in action.definition.get("runAfter", {}).items():
            assert name in action.siblings, f"{action.name} runs after {name}, which is not in its scope"
            assert statuses and set(statuses) <= RUN_AFTER_STATUSES, f"{action.name}: runAfter {statuses}"
        for text in _own_strings(action):
            for referenced in _REFERENCE.findall(text):
                assert referenced in actions, f"{action.name} reads {referenced}, which does not exist"
                assert referenced in _before(action, actions), (
                    f"{action.name} reads {referenced}, which has not always run before it")


def test_the_caller_is_answered_at_once_and_no_response_follows_a_wait() -> None:
    actions = _actions()
    responses = [a for a in actions.values() if a.definition["type"] == "Response"]
    assert responses
    for response in responses:
        waits = [name for name in _before(response, actions) if _is_wait(actions[name])]
        assert not waits, f"{response.name} answers only after {waits}: the caller has gone by then"
    accepted = actions["Reply_accepted"].definition["inputs"]
    assert accepted["statusCode"] == 202
    assert {"packageRef", "statusUrl"} <= set(accepted["body"])
    assert actions["Create_signing_package"].definition["operationOptions"] == "DisableAsyncPattern"


def test_the_wait_is_a_webhook_and_every_outcome_is_handled() -> None:
    actions = _actions()
    webhooks = [a for a in actions.values() if a.definition["type"] == "HttpWebhook"]
    assert [a.name for a in webhooks] == ["Wait_for_the_end_of_signing"]
    assert not [a.name for a in actions.values() if a.definition["type"] in ("Until", "Wait")], "no polling"
    subscribe = webhooks[0].definition["inputs"]["subscribe"]["body"]
    assert subscribe["url"] == "@{listCallbackUrl()}"
    assert webhooks[0].definition["inputs"]["unsubscribe"]["body"]["url"] == "@{listCallbackUrl()}"
    # Finished is followed by package.archived (the signed files stored), which is what the flow needs.
    assert set(subscribe["events"]) == {"package.archived", "package.status_changed"}
    assert {"Rejected", "Revoked", "Expired"} <= set(subscribe["statuses"])
    outcome = actions["Handle_the_outcome"].definition
    assert {"Finished", "Rejected", "Revoked", "Expired"} <= {case["case"] for case in outcome["cases"].values()}
    assert outcome["default"]["actions"], "other endings (Failed) are reported too"
    timed_out = actions["Report_no_outcome"].definition["runAfter"]["Wait_for_the_end_of_signing"]
    assert "TimedOut" in timed_out


# ---- the calls against the served definition --------------------------------------------------------

_SAMPLE_VALUES = {
    "@{listCallbackUrl()}": "https://8.8.8.8/workflows/run-1/callback?sig=abc",
    "@{parameters('functionKey')}": "a-function-key",
}


def _materialised(value: Any, package_ref: str) -> Any:
    """The request as the engine would send it, with sample values for the expressions."""
    if isinstance(value, dict):
        return {k: _materialised(v, package_ref) for k, v in value.items()}
    if isinstance(value, list):
        return [_materialised(v, package_ref) for v in value]
    if isinstance(value, str) and value.startswith("@"):
        if value in _SAMPLE_VALUES:
            return _SAMPLE_VALUES[value]
        if "packageRef" in value:
            return package_ref
        return "JVBERi0xLjQK" if "pdfBase64" in value else "Sample text"
    return value


def _calls_to_the_app() -> Iterator[tuple[str, dict[str, Any]]]:
    for action in _actions().values():
        inputs = action.definition.get("inputs", {})
        for name, call in [(action.name, inputs), *((f"{action.name}.{k}", inputs.get(k)) for k in
                                                     ("subscribe", "unsubscribe"))]:
            if isinstance(call, dict) and str(call.get("uri", "")).startswith(APP):
                yield name, call


def _operation(spec: dict[str, Any], call: dict[str, Any]) -> dict[str, Any]:
    path = re.sub(r"@\{[^}]*\}", "{x}", call["uri"].removeprefix(APP))
    for template, item in spec["paths"].items():
        if re.fullmatch(re.sub(r"\{\w+\}", r"\\{x\\}", template), path):
            operation: dict[str, Any] = item[call["method"].lower()]
            return operation
    raise AssertionError(f"{call['method']} {path} is not in the served definition")


def test_every_call_to_the_app_is_an_operation_of_the_served_definition(api: ApiClient) -> None:
    spec = api.spec
    calls = dict(_calls_to_the_app())
    assert {"Create_signing_package", "Wait_for_the_end_of_signing.subscribe",
            "Wait_for_the_end_of_signing.unsubscribe", "Get_document_links", "Revoke_the_expired_package"} <= set(calls)
    for name, call in calls.items():
        operation = _operation(spec, call)
        assert call["headers"]["x-functions-key"] == "@{parameters('functionKey')}", name
        body = next((p for p in operation["parameters"] if p["in"] == "body"), None)
        if body is None:
            assert "body" not in call, f"{name} sends a body that {operation['operationId']} does not take"
            continue
        schema = {**body["schema"], "definitions": spec["definitions"]}
        jsonschema.Draft4Validator(schema).validate(_materialised(call["body"], "api-sample"))


def test_subscribe_and_unsubscribe_work_against_the_app(api: ApiClient) -> None:
    calls = dict(_calls_to_the_app())
    subscribe = calls["Wait_for_the_end_of_signing.subscribe"]
    unsubscribe = calls["Wait_for_the_end_of_signing.unsubscribe"]
    path = subscribe["uri"].removeprefix(APP)
    created = api.call(subscribe["method"], "/api" + path, _materialised(subscribe["body"], "api-sample"))
    assert created.status == 201
    assert created.json()["packageRef"] == "api-sample"
    removed = api.call(unsubscribe["method"], "/api" + unsubscribe["uri"].removeprefix(APP),
                       _materialised(unsubscribe["body"], "api-sample"))
    assert removed.status == 204


def _schema_at(spec: dict[str, Any], schema: dict[str, Any], keys: list[str]) -> bool:
    for key in keys:
        if "$ref" in schema:
            schema = spec["definitions"][schema["$ref"].removeprefix("#/definitions/")]
        properties = schema.get("properties", {})
        if key not in properties:
            return False
        schema = properties[key]
    return True


@pytest.mark.parametrize("action", ["Create_signing_package", "Wait_for_the_end_of_signing", "Get_document_links"])
def test_every_field_the_workflow_reads_is_in_the_served_definition(api: ApiClient, action: str) -> None:
    spec = api.spec
    calls = dict(_calls_to_the_app())
    if action == "Wait_for_the_end_of_signing":
        # The body is the event delivered to the callback: one of the subscribed event types.
        events = calls[f"{action}.subscribe"]["body"]["events"]
        paths = {path: item for path, item in spec["paths"].items() if "x-ms-notification-content" in item}
        schemas = [item["x-ms-notification-content"]["schema"] for item in paths.values()
                   if item["post"]["x-ms-trigger"] and _event_type_of(spec, item) in events]
        assert schemas
    else:
        operation = _operation(spec, calls[action])
        status = "202" if action == "Create_signing_package" else "200"  # the create call does not wait
        schemas = [operation["responses"][status]["schema"]]
    read = {tuple(re.findall(r"\['([^']+)'\]", chain))
            for text in _strings(_definition()) for name, chain in _PROPERTY_PATH.findall(text) if name == action}
    assert read
    for keys in read:
        assert any(_schema_at(spec, schema, list(keys)) for schema in schemas), f"{action} has no {keys}"


def _event_type_of(spec: dict[str, Any], item: dict[str, Any]) -> str:
    name = item["x-ms-notification-content"]["schema"]["$ref"].removeprefix("#/definitions/")
    return {typed_event(event_type).__name__: event_type.value for event_type in EventType}[name]


def test_the_guide_walks_through_the_same_workflow() -> None:
    guide = GUIDE.read_text(encoding="utf-8")
    for name in _definition()["actions"]:
        assert name in guide, f"docs/POWER_AUTOMATE.md does not mention {name}"
    for path in ("/api/subscriptions", "/api/subscriptions/remove", "listCallbackUrl()", "DisableAsyncPattern"):
        assert path in guide, path
