"""HTTP API for Power Automate and Logic Apps (routes under /api), its OpenAPI definition and health.

One function per route; each hands the request to `shared.api.dispatch.handle`, which picks the
operation by route and method (see `shared.api.operations`). Every route needs a function key
except health. The API's modules are imported by the first request (`handle` below): a cold start
for a blob or queue trigger does not pay for them.
"""

from __future__ import annotations

import azure.functions as func

bp = func.Blueprint()


def handle(route: str, req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    from shared.api.dispatch import handle as dispatch

    return dispatch(route, req, context)


@bp.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def api_health(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return handle("health", req, context)


@bp.route(route="openapi.json", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def api_openapi(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return handle("openapi.json", req, context)


@bp.route(route="packages", methods=["GET", "POST"], auth_level=func.AuthLevel.FUNCTION)
def api_packages(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return handle("packages", req, context)


@bp.route(route="packages/{ref}", methods=["GET", "DELETE"], auth_level=func.AuthLevel.FUNCTION)
def api_package(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return handle("packages/{ref}", req, context)


@bp.route(route="packages/{ref}/documents", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def api_package_documents(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return handle("packages/{ref}/documents", req, context)


@bp.route(route="packages/{ref}/remind", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
def api_package_remind(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return handle("packages/{ref}/remind", req, context)


@bp.route(route="packages/{ref}/revoke", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
def api_package_revoke(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return handle("packages/{ref}/revoke", req, context)


@bp.route(route="packages/{ref}/skip-signers", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
def api_package_skip_signers(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return handle("packages/{ref}/skip-signers", req, context)


@bp.route(route="packages/{ref}/extend", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
def api_package_extend(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return handle("packages/{ref}/extend", req, context)


@bp.route(route="bulk-sends", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
def api_bulk_sends(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return handle("bulk-sends", req, context)


@bp.route(route="bulk-sends/{job}", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def api_bulk_send(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return handle("bulk-sends/{job}", req, context)


@bp.route(route="bulk-sends/{job}/cancel", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
def api_bulk_send_cancel(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return handle("bulk-sends/{job}/cancel", req, context)


@bp.route(route="subscriptions", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
def api_subscriptions(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return handle("subscriptions", req, context)


@bp.route(route="subscriptions/remove", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
def api_subscriptions_remove(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return handle("subscriptions/remove", req, context)


@bp.route(route="subscriptions/triggers/{trigger}", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
def api_subscription_trigger(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return handle("subscriptions/triggers/{trigger}", req, context)


@bp.route(route="subscriptions/{id}", methods=["DELETE"], auth_level=func.AuthLevel.FUNCTION)
def api_subscription(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return handle("subscriptions/{id}", req, context)
