"""Actions through the Connective sandbox, subscriptions, and a subscriber receiving a signed event."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.api.dispatch import connective_problem
from shared.connective import errors
from shared.pipeline import creation, services
from shared.storage.status import PackageStatus
from shared.webhooks.delivery import Outcome, deliver
from shared.webhooks.publish import subscriptions
from tests.api.conftest import PUBLIC_BASE_URL, SIGNING_SECRET, ApiClient
from tests.api.test_packages import package_body
from tests.conftest import SandboxHandle
from tests.pipeline.callback_world import act, actors
from tests.webhooks.receiver import running_receiver, take_messages
from tests.webhooks.verify import verifies


def pending_package(api: ApiClient, **overrides: Any) -> str:
    """A package created through the API and then at the sandbox by the creation step."""
    ref = api.call("POST", "/api/packages", package_body(**overrides),
                   headers={"Idempotency-Key": uuid.uuid4().hex}).json()["packageRef"]
    client = services.connective(api.settings, 5.0)
    creation.create(ref, store=api.store, settings=api.settings, client=client)
    record = api.store.packages.get(ref)
    assert record is not None and record.status is PackageStatus.PENDING
    return ref


def test_reads_spend_no_connective_calls_and_refresh_does(sandbox_api: ApiClient, sandbox: SandboxHandle) -> None:
    ref = pending_package(sandbox_api)
    waited = sandbox_api.call("GET", f"/api/packages/{ref}", params={"wait": "created"})
    assert waited.status == 200 and waited.json()["connectivePackageId"]
    # Only the API calls count: the sandbox's own callback attempts go on meanwhile.
    before = sandbox.admin("GET", "stats").json()["calls_by_operation"]
    for _ in range(3):
        assert sandbox_api.call("GET", f"/api/packages/{ref}").status == 200
    assert sandbox.admin("GET", "stats").json()["calls_by_operation"] == before
    refreshed = sandbox_api.call("GET", f"/api/packages/{ref}", params={"refresh": "true"})
    assert refreshed.status == 200 and refreshed.json()["signers"][0]["email"] == "ann@example.com"
    assert refreshed.json()["signers"][0]["status"]
    assert sandbox.admin("GET", "stats").json()["calls_by_operation"] != before


def test_actions_on_a_pending_package(sandbox_api: ApiClient) -> None:
    ref = pending_package(sandbox_api)
    reminded = sandbox_api.call("POST", f"/api/packages/{ref}/remind")
    assert reminded.status == 200 and reminded.json()["reminderCount"] == 1 and reminded.json()["lastReminderAt"]

    extended = sandbox_api.call("POST", f"/api/packages/{ref}/extend", {"days": 10})
    assert extended.status == 200 and extended.json()["extensionCount"] == 1
    new_expiry = datetime.fromisoformat(extended.json()["expiryTimestamp"])
    assert new_expiry > datetime.now(UTC) + timedelta(days=9)
    assert sandbox_api.call("POST", f"/api/packages/{ref}/extend", {"days": 1, "expiryTimestamp":
                                                                    "2040-01-01T00:00:00Z"}).status == 400
    assert sandbox_api.call("POST", f"/api/packages/{ref}/extend", {"weeks": 1}).status == 400

    assert sandbox_api.call("DELETE", f"/api/packages/{ref}").status == 409  # not ended yet
    revoked = sandbox_api.call("POST", f"/api/packages/{ref}/revoke")
    assert revoked.status == 200 and revoked.json()["status"] == "Revoked" and revoked.json()["isFinal"]
    assert sandbox_api.call("POST", f"/api/packages/{ref}/remind").status == 409
    deleted = sandbox_api.call("DELETE", f"/api/packages/{ref}")
    assert deleted.status == 200 and deleted.json()["deletedAt"]
    again = sandbox_api.call("DELETE", f"/api/packages/{ref}")
    assert again.status == 200 and again.json()["deletedAt"] == deleted.json()["deletedAt"]
    record = sandbox_api.store.packages.get(ref)
    assert record is not None and record.status is PackageStatus.REVOKED  # the row stays as the audit trail
    kinds = [event["kind"] for event in sandbox_api.store.events.history(ref)]
    assert {"reminder", "extended", "revoke_requested", "deleted_at_connective"} <= set(kinds)


def test_skip_signers(sandbox_api: ApiClient, sandbox: SandboxHandle) -> None:
    ref = pending_package(sandbox_api, signers=[{"name": "Ann Smith", "email": "ann@example.com", "order": 1},
                                                {"name": "Bob Jones", "email": "bob@example.com", "order": 2}])
    refused = sandbox_api.call("POST", f"/api/packages/{ref}/skip-signers")
    assert refused.status == 409 and "nobody has signed" in refused.json()["detail"]
    record = sandbox_api.store.packages.get(ref)
    assert record is not None and record.connective_package_id
    first = actors(sandbox, record.connective_package_id)[0]
    act(sandbox, record.connective_package_id, first["id"], "sign")
    assert sandbox_api.call("POST", f"/api/packages/{ref}/skip-signers").status == 200


def test_connective_errors_become_problems(sandbox_api: ApiClient) -> None:
    ref = pending_package(sandbox_api)

    def forget_id(row):  # type: ignore[no-untyped-def]
        row.connective_package_id = "00000000-0000-0000-0000-000000000000"
        return True

    sandbox_api.store.packages.mutate(ref, forget_id)
    answer = sandbox_api.call("POST", f"/api/packages/{ref}/skip-signers")
    assert answer.status in (400, 404) and "Connective" in answer.json()["detail"]


@pytest.mark.parametrize("error, status, retry_after", [
    (errors.RateLimitDeferred(7.2), 429, "8"),  # rounded up: a retry after 7 s would come too early
    (errors.ThrottledError(429, None, "slow down", retry_after=12), 429, "12"),
    (errors.NotFoundError(404, None, "gone"), 404, None),
    (errors.ConflictError(409, "Package.NotSigned", "no"), 409, None),
    (errors.InvalidRequestError(400, None, "bad"), 400, None),
    (errors.ServerError(503, None, "down"), 502, None),
    (errors.AuthenticationError(401, None, "who"), 502, None),
    (errors.TransportError("timeout"), 502, None),
])
def test_connective_error_mapping(error: Exception, status: int, retry_after: str | None) -> None:
    problem = connective_problem(error)  # type: ignore[arg-type]
    assert problem.status == status and problem.headers.get("Retry-After") == retry_after


def test_subscriptions_and_triggers(api: ApiClient) -> None:
    created = api.call("POST", "/api/subscriptions", {"url": "https://8.8.8.8/hook",
                                                      "events": ["package.archived", "package.archived"]})
    assert created.status == 201
    subscription_id = created.json()["id"]
    assert created.headers["Location"] == f"{PUBLIC_BASE_URL}/api/subscriptions/{subscription_id}"
    assert created.json()["events"] == ["package.archived"]
    stored = subscriptions(api.store).get(subscription_id)
    assert stored is not None and stored.url == "https://8.8.8.8/hook"

    signed = api.call("POST", "/api/subscriptions/triggers/package-signed", {"url": "https://8.8.8.8/flow?sig=x"})
    assert signed.status == 201
    assert (signed.json()["events"], signed.json()["statuses"]) == (["package.status_changed"], ["Finished"])

    assert api.call("DELETE", signed.headers["Location"]).status == 204
    assert api.call("DELETE", signed.headers["Location"]).status == 404
    assert api.call("DELETE", "/api/subscriptions/not-an-id").status == 404
    assert api.call("POST", "/api/subscriptions/triggers/when-pigs-fly", {"url": "https://8.8.8.8/"}).status == 404


def test_unsubscribe_by_callback_url(api: ApiClient) -> None:
    """What a Logic Apps HTTP Webhook action's unsubscribe call does: it knows its URL, not the id."""
    url = "https://8.8.8.8/workflows/run-1?sig=abc"
    ids = [api.call("POST", "/api/subscriptions", {"url": url, "events": [event]}).json()["id"]
           for event in ("package.archived", "package.status_changed")]
    other = api.call("POST", "/api/subscriptions", {"url": url + "d", "events": ["package.archived"]}).json()["id"]
    assert api.call("POST", "/api/subscriptions/remove", {"url": url}).status == 204
    assert [subscriptions(api.store).get(i) for i in ids] == [None, None]
    assert subscriptions(api.store).get(other) is not None
    assert api.call("POST", "/api/subscriptions/remove", {"url": url}).status == 404


@pytest.mark.parametrize("body, field", [
    ({"url": "http://8.8.8.8/hook", "events": ["package.archived"]}, "url"),
    ({"url": "https://10.1.2.3/hook", "events": ["package.archived"]}, "url"),
    ({"url": "https://169.254.169.254/x", "events": ["package.archived"]}, "url"),
    ({"url": "https://8.8.8.8/hook", "events": ["package.exploded"]}, "events[0]"),
    ({"url": "https://8.8.8.8/hook", "events": []}, "events"),
    ({"url": "https://8.8.8.8/hook", "events": ["package.archived"], "secret": "x"}, "secret"),
])
def test_subscriptions_refuse_bad_requests(monkeypatch: pytest.MonkeyPatch, storage_connection_string: str,
                                           body: dict, field: str) -> None:
    from tests.api.conftest import env_for

    strict = ApiClient(monkeypatch, env_for(storage_connection_string, WEBHOOK_ALLOW_LOOPBACK="false"))
    answer = strict.call("POST", "/api/subscriptions", body)
    assert answer.status == 400 and answer.json()["errors"][0]["field"] == field


def test_a_trigger_subscriber_receives_a_signed_event(api: ApiClient) -> None:
    with running_receiver() as receiver:
        subscribed = api.call("POST", "/api/subscriptions/triggers/package-not-signed", {"url": receiver.url})
        assert subscribed.status == 201
        subscription_id = subscribed.json()["id"]
        from shared.webhooks.publish import EventType, publish_event

        ref = f"t-{uuid.uuid4().hex[:12]}"
        publish_event(api.store, EventType.STATUS_CHANGED, ref, {"status": "Pending", "previousStatus": "Creating"})
        publish_event(api.store, EventType.STATUS_CHANGED, ref, {"status": "Rejected", "previousStatus": "Pending"})
        mine = take_messages(api.store, subscription_id)
        assert len(mine) == 1
        assert deliver(api.settings, api.store, mine[0]).outcome is Outcome.DELIVERED
        [request] = receiver.requests
        assert verifies(SIGNING_SECRET, request.body, request.headers)
        event = json.loads(request.body)
        assert (event["packageRef"], event["data"]["status"]) == (ref, "Rejected")
