"""Every operation of the HTTP API, once: its route, handler, parameters, body and answers.

`functions/api.py` serves these routes and `shared.api.openapi` describes them, both from this
table, so the definition a connector imports is the API that runs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import azure.functions as func
from pydantic import BaseModel

from shared.api import bulk, labels, packages, subscriptions, system
from shared.api.context import ApiRequest
from shared.api.models import (
    AcceptedPackage,
    DocumentLinks,
    ExtendRequest,
    Health,
    PackagePage,
    PackageResource,
    SubscriptionRequest,
    SubscriptionResource,
    TriggerSubscriptionRequest,
    UnsubscribeRequest,
)
from shared.api.triggers import TRIGGERS, Trigger
from shared.pipeline.spec import PackageRequest
from shared.webhooks.events import WebhookEvent, typed_event

Handler = Callable[[ApiRequest], func.HttpResponse]


@dataclass(frozen=True)
class Param:
    name: str
    location: str  # path | query | header
    summary: str
    description: str
    type: str = "string"
    required: bool = False
    format: str | None = None
    enum: Mapping[str, str] | None = None  # value -> what it means (x-ms-enum-values)
    visibility: str | None = None  # important | advanced | internal (x-ms-visibility)


@dataclass(frozen=True)
class Answer:
    status: int
    description: str
    model: type[BaseModel] | None = None
    headers: tuple[str, ...] = ()  # names in HEADERS


@dataclass(frozen=True)
class ApiOperation:
    operation_id: str
    method: str
    path: str  # as in the OpenAPI `paths`, below basePath /api
    route: str  # the function route that serves it (Functions route template, without /api)
    summary: str
    description: str
    handler: Handler
    answers: tuple[Answer, ...]
    body: type[BaseModel] | None = None
    params: tuple[Param, ...] = ()
    anonymous: bool = False
    extensions: dict[str, Any] = field(default_factory=dict)
    # For a trigger (x-ms-trigger): the body each delivery carries; the definition puts its schema
    # in the path item's x-ms-notification-content, which gives the trigger its outputs.
    notification: type[WebhookEvent] | None = None


HEADERS = {
    "Location": {"type": "string", "x-ms-summary": "Location",
                 "description": "URL of the created or status resource."},
    "Retry-After": {"type": "integer", "x-ms-summary": "Retry After",
                    "description": "Seconds to wait before asking again."},
}

REF = Param("ref", "path", "Package Reference", "The packageRef returned when the package was created.",
            required=True)
BULK_JOB = Param("job", "path", "Bulk Send ID", "The id returned when the bulk send was accepted.", required=True)
SUBSCRIPTION_ID = Param("id", "path", "Subscription ID", "The id returned when the subscription was made.",
                        required=True)
PROBLEMS = (Answer(400, "The request is invalid; the problem says why."),
            Answer(404, "There is no such package."))
CONNECTIVE_PROBLEMS = (Answer(409, "The package's status does not allow this action."),
                       Answer(429, "Too many calls to Connective right now; retry after Retry-After seconds.",
                              headers=("Retry-After",)),
                       Answer(502, "Connective failed or could not be reached."))


def _package_action(operation_id: str, action: str, summary: str, description: str, handler: Handler,
                    body: type[BaseModel] | None = None) -> ApiOperation:
    return ApiOperation(operation_id, "POST", f"/packages/{{ref}}/{action}", f"packages/{{ref}}/{action}", summary,
                        description, handler, (Answer(200, "The package after the action.", PackageResource),
                                               *PROBLEMS, *CONNECTIVE_PROBLEMS), body=body, params=(REF,))


def _trigger(trigger: Trigger) -> ApiOperation:
    (event_type,) = trigger.events  # one event type per trigger: its outputs are that event's fields
    return ApiOperation(
        trigger.operation_id, "POST", f"/subscriptions/triggers/{trigger.name}", "subscriptions/triggers/{trigger}",
        trigger.summary, trigger.description, subscriptions.post_trigger_subscription,
        (Answer(201, "Subscribed; DELETE the Location URL to unsubscribe.", SubscriptionResource, ("Location",)),
         Answer(400, "The request is invalid; the problem says why.")),
        body=TriggerSubscriptionRequest, extensions={"x-ms-trigger": "single"}, notification=typed_event(event_type),
    )


OPERATIONS: tuple[ApiOperation, ...] = (
    ApiOperation("Health", "GET", "/health", "health", "Check health",
                 "Whether the app can reach its storage. Needs no key and makes no Connective call.",
                 system.health, (Answer(200, "Healthy.", Health), Answer(503, "Storage is unreachable.", Health)),
                 anonymous=True, extensions={"x-ms-visibility": "internal"}),
    ApiOperation("GetOpenApi", "GET", "/openapi.json", "openapi.json", "Get the API definition",
                 "This Swagger 2.0 definition, for importing the API as a custom connector.",
                 system.openapi_document, (Answer(200, "The definition."),),
                 extensions={"x-ms-visibility": "internal"}),
    ApiOperation("CreatePackage", "POST", "/packages", "packages", "Create a signing package",
                 "Send documents (base64 or blob paths) and signers; the package is created at Connective in the "
                 "background. Answers 202 with a Location to poll; the action waits until the package is created "
                 "at Connective. Send the same Idempotency-Key (or externalReference) again to get the same "
                 "package instead of a second one.",
                 packages.post_package,
                 (Answer(200, "The package once it exists at Connective: what the action returns after "
                         "following Location (the request itself answers 202).", PackageResource),
                  Answer(202, "Accepted; poll Location until it answers 200.", AcceptedPackage,
                         ("Location", "Retry-After")),
                  Answer(400, "The request is invalid; the problem says why."),
                  Answer(409, "The Idempotency-Key was used with another body, or its first request is still "
                              "being processed (then Retry-After says when to send it again)."),
                  Answer(413, "The request body is larger than the limit.")),
                 body=PackageRequest,
                 params=(Param("Idempotency-Key", "header", "Idempotency Key",
                               "Any unique text for this request; a retry with the same key returns the same "
                               "package.", visibility="advanced"),)),
    ApiOperation("ListPackages", "GET", "/packages", "packages", "List packages",
                 "Packages from the status table, in packageRef order, with optional filters. Follow nextLink "
                 "for more; a page may hold fewer items than asked for.",
                 packages.list_packages, (Answer(200, "One page of packages.", PackagePage),
                                          Answer(400, "A parameter is invalid.")),
                 params=(Param("status", "query", "Status", "Only packages in this status.",
                               enum=labels.PACKAGE_STATUS),
                         Param("createdFrom", "query", "Created From", "Only packages created at or after this time "
                               "(ISO 8601 with a time zone).", format="date-time"),
                         Param("createdTo", "query", "Created To", "Only packages created before this time "
                               "(ISO 8601 with a time zone).", format="date-time"),
                         Param("top", "query", "Page Size", "Packages per page, 1 to 200 (default 50).",
                               type="integer", visibility="advanced"),
                         Param("continuationToken", "query", "Continuation Token",
                               "The continuationToken of the previous page.", visibility="advanced")),
                 extensions={"x-ms-pageable": {"nextLinkName": "nextLink"}}),
    ApiOperation("GetPackage", "GET", "/packages/{ref}", "packages/{ref}", "Get a package",
                 "The package's status and signers from the status table (no Connective call), or re-read "
                 "from Connective with refresh=true. With wait=created or wait=final it answers 202 with "
                 "Location and Retry-After until the package is created at Connective, or until it is final.",
                 packages.get_package,
                 (Answer(200, "The package.", PackageResource),
                  Answer(202, "Still waiting (only with wait): poll Location.", PackageResource,
                         ("Location", "Retry-After")),
                  *PROBLEMS, Answer(429, "Too many calls to Connective (refresh).", headers=("Retry-After",))),
                 params=(REF,
                         Param("refresh", "query", "Refresh", "Re-read the status from Connective first.",
                               type="boolean", visibility="advanced"),
                         Param("wait", "query", "Wait", "Answer 202 until the package is created (created) or "
                               "final (final); used by the asynchronous pattern.",
                               enum={"created": "Until created at Connective", "final": "Until final"},
                               visibility="internal"))),
    ApiOperation("DeletePackage", "DELETE", "/packages/{ref}", "packages/{ref}", "Delete a package at Connective",
                 "Deletes an ended package (Archived, Rejected, Revoked or Failed) at Connective. The row here "
                 "stays, with deletedAt, as the audit trail.",
                 packages.delete_package, (Answer(200, "The package, with deletedAt.", PackageResource),
                                           *PROBLEMS, *CONNECTIVE_PROBLEMS), params=(REF,)),
    ApiOperation("GetDocumentLinks", "GET", "/packages/{ref}/documents", "packages/{ref}/documents",
                 "Get document links", "Read-only links, valid for minutes, to the archived signed documents and "
                 "audit proofs of an Archived package.",
                 packages.get_documents, (Answer(200, "The links.", DocumentLinks), *PROBLEMS,
                                          Answer(409, "The package is not archived yet.")),
                 params=(REF,)),
    _package_action("SendReminders", "remind", "Send reminders",
                    "Emails every signer of a Pending package who has not acted yet.", packages.remind),
    _package_action("RevokePackage", "revoke", "Revoke a package",
                    "Cancels a Pending or Expired package at Connective.", packages.revoke),
    _package_action("SkipSigners", "skip-signers", "Skip the remaining signers",
                    "Ends signing of a Pending package without the signers who have not acted.",
                    packages.skip_signers),
    _package_action("ExtendPackage", "extend", "Extend the expiry",
                    "Moves the expiry of a Pending or Expired package later (an Expired one is Pending again).",
                    packages.extend, ExtendRequest),
    ApiOperation("CreateBulkSend", "POST", "/bulk-sends", "bulk-sends", "Send a document to many recipients",
                 "Sends the same documents to every recipient, each in a package of their own, paced by the "
                 "rate budget. Answers 202 with the bulk send's status URL. Send the same Idempotency-Key again "
                 "with more recipients to add them: recipients already sent are skipped.",
                 bulk.post_bulk_send,
                 (Answer(202, "Accepted; follow the status URL for progress.", bulk.AcceptedBulkSend,
                         ("Location", "Retry-After")),
                  Answer(400, "The request is invalid; the problem says why."),
                  Answer(409, "The bulk send with this key was cancelled."),
                  Answer(413, "The request body is larger than the limit.")),
                 body=bulk.BulkSendRequest,
                 params=(Param("Idempotency-Key", "header", "Idempotency Key",
                               "Names the bulk send; a retry with the same key sends only rows not sent yet.",
                               visibility="advanced"),)),
    ApiOperation("GetBulkSend", "GET", "/bulk-sends/{job}", "bulk-sends/{job}", "Get a bulk send's progress",
                 "Counts by status, the failures with their reasons and an ETA from the rate budget. Reads the "
                 "app's tables only.",
                 bulk.get_bulk_send, (Answer(200, "The bulk send.", bulk.BulkSendResource),
                                      Answer(404, "There is no such bulk send.")),
                 params=(BULK_JOB,)),
    ApiOperation("CancelBulkSend", "POST", "/bulk-sends/{job}/cancel", "bulk-sends/{job}/cancel",
                 "Cancel a bulk send",
                 "Stops sending new rows and revokes the bulk send's packages that are not signed yet.",
                 bulk.cancel_bulk_send,
                 (Answer(202, "Cancelling; follow Location until the bulk send is final.", bulk.BulkSendResource,
                         ("Location", "Retry-After")),
                  Answer(404, "There is no such bulk send."),
                  Answer(409, "The bulk send is already final.")),
                 params=(BULK_JOB,)),
    ApiOperation("CreateSubscription", "POST", "/subscriptions", "subscriptions", "Subscribe to package events",
                 "Registers an https URL that receives signed event deliveries. For other systems; flows use "
                 "the triggers.",
                 subscriptions.post_subscription,
                 (Answer(201, "Subscribed; DELETE the Location URL to unsubscribe.", SubscriptionResource,
                         ("Location",)),
                  Answer(400, "The request is invalid; the problem says why.")),
                 body=SubscriptionRequest, extensions={"x-ms-visibility": "internal"}),
    ApiOperation("RemoveSubscriptionsByUrl", "POST", "/subscriptions/remove", "subscriptions/remove",
                 "Unsubscribe a callback URL",
                 "Removes every subscription that delivers to the URL; for callers that cannot keep the "
                 "subscription id, such as the Logic Apps HTTP Webhook action's unsubscribe call.",
                 subscriptions.remove_subscriptions_by_url,
                 (Answer(204, "Removed."), Answer(400, "The request is invalid; the problem says why."),
                  Answer(404, "There is no subscription to this URL.")),
                 body=UnsubscribeRequest, extensions={"x-ms-visibility": "internal"}),
    *(_trigger(trigger) for trigger in TRIGGERS),
    ApiOperation("DeleteSubscription", "DELETE", "/subscriptions/{id}", "subscriptions/{id}", "Unsubscribe",
                 "Removes a subscription; Power Automate calls it when a flow's trigger is removed.",
                 subscriptions.delete_subscription,
                 (Answer(204, "Removed."), Answer(404, "There is no such subscription.")),
                 params=(SUBSCRIPTION_ID,), extensions={"x-ms-visibility": "internal"}),
)


def find(route: str, method: str, route_params: dict[str, str]) -> ApiOperation | None:
    """The operation a function route serves for `method` (trigger routes pick by their path)."""
    method = method.upper()
    concrete = "/" + route
    for name, value in route_params.items():
        concrete = concrete.replace("{" + name + "}", value)
    for operation in OPERATIONS:
        if operation.route == route and operation.method == method and operation.path in ("/" + route, concrete):
            return operation
    return None


def methods_of(route: str) -> list[str]:
    return sorted({operation.method for operation in OPERATIONS if operation.route == route})
