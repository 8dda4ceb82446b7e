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

from shared.pipeline.tokens import CALLBACK_ROUTE, NOTIFICATION_ROUTE, ROUTE_PARAMETERS
from shared.storage import names

bp = func.Blueprint()


@bp.route(route=CALLBACK_ROUTE + ROUTE_PARAMETERS, methods=["GET", "POST"], auth_level=func.AuthLevel.ANONYMOUS)
def connective_callback(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    from shared.pipeline import services
    from shared.pipeline.callbacks import answer_callback

    return services.on_invocation(context, lambda use: answer_callback(req, use),
                                  package_ref=req.route_params.get("packageRef", ""))


@bp.route(route=NOTIFICATION_ROUTE + ROUTE_PARAMETERS, methods=["GET", "POST"],
          auth_level=func.AuthLevel.ANONYMOUS)
def connective_link_request(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    from shared.pipeline import services
    from shared.pipeline.callbacks import answer_link_request

    return services.on_invocation(context, lambda use: answer_link_request(req, use),
                                  package_ref=req.route_params.get("packageRef", ""))


@bp.queue_trigger(arg_name="message", queue_name=names.STATUS_REFRESH_QUEUE,
                  connection=names.DOCUMENT_STORAGE_CONNECTION)
def refresh_package_status(message: func.QueueMessage, context: func.Context) -> None:
    from shared.pipeline import services
    from shared.pipeline.callbacks import handle_status_refresh

    services.on_package_message(message, context, names.STATUS_REFRESH_QUEUE, "package.status_refresh",
                                lambda use, payload: handle_status_refresh(use.store, use.connective(), use.settings,
                                                                           payload))
