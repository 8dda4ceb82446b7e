"""Handlers of /api/subscriptions: webhook subscriptions, and the flow triggers built on them.

Power Automate and Logic Apps create a subscription when a flow with one of our triggers is saved
(POST with the flow's callback URL) and delete it, through the Location header of the 201 answer,
when the flow is removed or its trigger changes.
"""

from __future__ import annotations

import re
from urllib.parse import quote

import azure.functions as func

from shared.api.context import ApiRequest, json_response
from shared.api.models import (
    SubscriptionRequest,
    SubscriptionResource,
    TriggerSubscriptionRequest,
    UnsubscribeRequest,
)
from shared.api.problems import ApiProblem, FieldError
from shared.api.triggers import BY_NAME
from shared.logging import get_logger, log_event
from shared.webhooks.delivery import url_policy
from shared.webhooks.publish import subscriptions
from shared.webhooks.ssrf import UnsafeUrlError, check_url
from shared.webhooks.subscriptions import Subscription

_log = get_logger(__name__)
_SUBSCRIPTION_ID = re.compile(r"^[0-9a-f]{32}$")


def _created(request: ApiRequest, subscription: Subscription) -> func.HttpResponse:
    try:
        check_url(subscription.url, url_policy(request.settings))
    except UnsafeUrlError as error:
        raise ApiProblem(400, f"The url cannot receive webhooks: {error}.",
                         errors=[FieldError(field="url", message=str(error))]) from None
    subscriptions(request.store).add(subscription)
    log_event(_log, "api.subscription.created", subscription_id=subscription.id, trigger=subscription.trigger,
              events=[e.value for e in subscription.events])
    resource = SubscriptionResource(id=subscription.id, events=subscription.events,
                                    package_ref=subscription.package_ref, statuses=subscription.statuses or None,
                                    created_at=subscription.created_at)
    location = request.url(f"/subscriptions/{quote(subscription.id, safe='')}")
    return json_response(resource, 201, {"Location": location})


def post_subscription(request: ApiRequest) -> func.HttpResponse:
    body: SubscriptionRequest = request.body(SubscriptionRequest)
    return _created(request, Subscription(url=body.url, events=list(dict.fromkeys(body.events)),
                                          package_ref=body.package_ref,
                                          statuses=[s.value for s in body.statuses or []]))


def post_trigger_subscription(request: ApiRequest) -> func.HttpResponse:
    trigger = BY_NAME.get(request.route("trigger"))
    if trigger is None:
        raise ApiProblem(404, f"There is no trigger {request.route('trigger')[:100]!r}.")
    body: TriggerSubscriptionRequest = request.body(TriggerSubscriptionRequest)
    return _created(request, Subscription(url=body.url, events=list(trigger.events), package_ref=body.package_ref,
                                          statuses=[s.value for s in trigger.statuses], trigger=trigger.name))


def remove_subscriptions_by_url(request: ApiRequest) -> func.HttpResponse:
    """For callers that know their callback URL but not the subscription id: the Logic Apps HTTP
    Webhook action's unsubscribe call cannot read what its subscribe call answered."""
    body: UnsubscribeRequest = request.body(UnsubscribeRequest)
    repository = subscriptions(request.store)
    removed = [s.id for s in repository.all() if s.url == body.url and repository.remove(s.id)]
    if not removed:
        raise ApiProblem(404, "There is no subscription to this url.")
    log_event(_log, "api.subscription.deleted", subscription_ids=removed)
    return func.HttpResponse(status_code=204)


def delete_subscription(request: ApiRequest) -> func.HttpResponse:
    subscription_id = request.route("id")
    if not _SUBSCRIPTION_ID.match(subscription_id) or not subscriptions(request.store).remove(subscription_id):
        raise ApiProblem(404, f"There is no subscription {subscription_id[:100]!r}.")
    log_event(_log, "api.subscription.deleted", subscription_id=subscription_id)
    return func.HttpResponse(status_code=204)
