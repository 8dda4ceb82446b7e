"""Connective's callbacks (HTTP), its new-link requests (HTTP) and the `status-refresh` queue trigger.

The routes are anonymous: the per-package token in the path (`/{packageRef}/{token}`) is the
authentication, checked in constant time before anything else is looked at, the body included
(shared.pipeline.tokens); a body over 64 KB is then refused unread, and a row too busy to record
the callback answers 503 with Retry-After.
URLs registered before the token moved into the path carry it as `?token=` and reach the same
functions (the `{token?}` segment is optional).

Azure imports every trigger module at each cold start, before the first invocation: the modules
that do the work are imported inside the functions, by the first invocation that needs them.
"""

from __future__ import annotations

import azure.functions as func

from shared.logging import package_scope
from shared.pipeline.tokens import CALLBACK_ROUTE, NOTIFICATION_ROUTE, ROUTE_PARAMETERS
from shared.storage import names

bp = func.Blueprint()


@bp.route(route=CALLBACK_ROUTE + ROUTE_PARAMETERS, methods=["GET", "POST"], auth_level=func.AuthLevel.ANONYMOUS)
def connective_callback(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    from shared.config import Settings
    from shared.connection import connective_client
    from shared.pipeline.callbacks import answer_connective_request, claim_from_request, handle_callback
    from shared.storage.store import shared_store
    from shared.telemetry import invocation

    with invocation(context), package_scope(req.route_params.get("packageRef", "")):
        settings = Settings.current()
        return answer_connective_request(req, settings, lambda ref, token: handle_callback(
            shared_store(settings), connective_client(settings), settings, ref, token,
            claim_from_request(req.params, req.get_body())))


@bp.route(route=NOTIFICATION_ROUTE + ROUTE_PARAMETERS, methods=["GET", "POST"],
          auth_level=func.AuthLevel.ANONYMOUS)
def connective_link_request(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    from shared.config import Settings
    from shared.connection import connective_client
    from shared.pipeline.callbacks import answer_connective_request, handle_link_request
    from shared.storage.store import shared_store
    from shared.telemetry import invocation

    with invocation(context), package_scope(req.route_params.get("packageRef", "")):
        settings = Settings.current()
        return answer_connective_request(req, settings, lambda ref, token: handle_link_request(
            shared_store(settings), connective_client(settings), settings, ref, token, req.get_body(), req.params))


@bp.queue_trigger(arg_name="message", queue_name=names.STATUS_REFRESH_QUEUE,
                  connection=names.DOCUMENT_STORAGE_CONNECTION)
def refresh_package_status(message: func.QueueMessage, context: func.Context) -> None:
    from shared.config import Settings
    from shared.connection import connective_client
    from shared.messages import PackageMessage, read_message
    from shared.pipeline.callbacks import handle_status_refresh
    from shared.storage.store import shared_store
    from shared.telemetry import SpanKind, invocation, package_step

    payload = read_message(message.get_body(), PackageMessage, names.STATUS_REFRESH_QUEUE, message.id)
    if payload is None:
        return
    ref = payload["packageRef"]
    with invocation(context), package_scope(ref), \
            package_step("package.status_refresh", ref, payload.get("traceparent"), kind=SpanKind.CONSUMER):
        settings = Settings.current()
        handle_status_refresh(shared_store(settings), connective_client(settings), settings, payload)
