"""The HTTP front end: HTTP-trigger routes with key auth, and the host's admin endpoints.

Only the parent process serves HTTP (werkzeug's threaded server, HTTP/1.1 keep-alive), so each
request is answered exactly once and a worker that dies takes no open connection with it.
"""

from __future__ import annotations

import contextlib
import json
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from werkzeug.datastructures import Headers
from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wrappers import Request, Response

from devtools.host import logs, rpc
from devtools.host.config import HostConfigError
from devtools.host.functions import HTTP_TRIGGER, QUEUE_TRIGGER, RETURN_BINDING, TIMER_TRIGGER, FunctionSpec
from devtools.host.inputs import http_trigger, queue_trigger, timer_trigger
from devtools.host.invoke import InvocationFailed, Invoker
from devtools.host.keys import ADMIN, FUNCTION, HostKeys
from devtools.host.routes import Router

KEY_HEADER = "x-functions-key"


def _json(payload: Any, status: int = 200) -> Response:
    return Response(json.dumps(payload), status=status, mimetype="application/json")


def _cookie_header(cookie: rpc.RpcHttpCookie) -> str:
    parts = [f"{cookie.name}={cookie.value}"]
    for label, nullable in (("Domain", cookie.domain), ("Path", cookie.path), ("Max-Age", cookie.max_age)):
        if nullable.HasField("value"):
            value = int(nullable.value) if label == "Max-Age" else nullable.value
            parts.append(f"{label}={value}")
    if cookie.expires.HasField("value"):
        parts.append(f"Expires={cookie.expires.value:%a, %d %b %Y %H:%M:%S GMT}")
    if cookie.secure.value:
        parts.append("Secure")
    if cookie.http_only.value:
        parts.append("HttpOnly")
    same_site = {rpc.RpcHttpCookie.SameSite.Lax: "Lax", rpc.RpcHttpCookie.SameSite.Strict: "Strict",
                 rpc.RpcHttpCookie.SameSite.ExplicitNone: "None"}.get(cookie.same_site)
    if same_site:
        parts.append(f"SameSite={same_site}")
    return "; ".join(parts)


def to_response(returned: rpc.TypedData) -> Response:
    """The HTTP answer from what the worker returned for `$return`: its RpcHttp, or a plain value."""
    if returned.WhichOneof("data") != "http":
        value = rpc.plain(returned)
        if value is None:
            return Response(status=204)
        if isinstance(value, bytes):
            return Response(value, mimetype="application/octet-stream")
        if isinstance(value, str):
            return Response(value, mimetype="text/plain")
        return _json(value)
    http = returned.http
    headers = Headers(list(http.headers.items()))
    for cookie in http.cookies or []:
        headers.add("Set-Cookie", _cookie_header(cookie))
    body = rpc.plain(http.body)
    return Response(body if body is not None else b"", status=int(http.status_code or 200), headers=headers)


class HttpFrontend:
    """The WSGI application of the host."""

    def __init__(self, specs: list[FunctionSpec], route_prefix: str, keys: HostKeys, invoker: Invoker,
                 max_body_bytes: int, status: Callable[[], dict[str, Any]]) -> None:
        self._keys = keys
        self._invoker = invoker
        self._max_body_bytes = max_body_bytes
        self._status = status
        self._functions = {spec.name.lower(): spec for spec in specs}
        self.router = Router(route_prefix)
        self.routes: dict[str, str] = {}
        for spec in specs:
            if spec.trigger.type != HTTP_TRIGGER:
                continue
            if any(b.type == "http" and b.name != RETURN_BINDING for b in spec.outputs):
                raise HostConfigError(f"function {spec.name}: only `$return` is supported as the HTTP output")
            template = spec.trigger.get("route") or spec.name
            self.routes[spec.name] = self.router.add(template, spec.trigger.get("methods"), spec)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        try:
            response = self._respond(request)
        except Exception:
            logs.event("host.http.error", 40, exc_info=True, path=request.path)
            response = Response(status=500)
        return response(environ, start_response)

    def _presented_key(self, request: Request) -> str | None:
        return request.args.get("code") or request.headers.get(KEY_HEADER)

    def _respond(self, request: Request) -> Response:
        path = request.path
        if path.rstrip("/").lower() == "/admin/host/status":
            return _json(self._status())
        if path.lower().startswith("/admin/functions/"):
            return self._admin_invoke(request, path.split("/", 3)[3])
        if path == "/":
            return Response("The local Functions host is running.", mimetype="text/plain")
        found = self.router.match(request.method, path)
        if found is None:
            return Response(status=404)
        spec, route_params = found
        if not self._keys.allows(self._presented_key(request), str(spec.trigger.get("authLevel", FUNCTION)).lower()):
            return Response(status=401)
        if (request.content_length or 0) > self._max_body_bytes:
            return Response("Request body too large", status=413)
        body = request.stream.read(self._max_body_bytes + 1)
        if len(body) > self._max_body_bytes:
            return Response("Request body too large", status=413)
        trigger = http_trigger(request.method, request.url, dict(request.headers.items()),
                               {k: request.args.get(k, "") for k in request.args}, route_params, body)
        try:
            returned = self._invoker.invoke(spec, trigger)
        except InvocationFailed:
            return Response(status=500)
        return to_response(returned)

    def _admin_invoke(self, request: Request, name: str) -> Response:
        """`POST /admin/functions/{name}` with the master key runs a non-HTTP function, as in Azure."""
        if request.method != "POST":
            return Response(status=405)
        if not self._keys.allows(self._presented_key(request), ADMIN):
            return Response(status=401)
        spec = self._functions.get(name.lower())
        if spec is None:
            return Response(status=404)
        payload = request.get_json(silent=True) or {}
        text = str(payload.get("input", ""))
        if spec.trigger.type == TIMER_TRIGGER:
            trigger = timer_trigger(past_due=False)
        elif spec.trigger.type == QUEUE_TRIGGER:
            now = datetime.now(UTC)
            trigger = queue_trigger(str(uuid.uuid4()), text.encode("utf-8"), 1, inserted_on=now, next_visible_on=now)
        else:
            return _json({"error": f"{spec.trigger.type} functions cannot be run through this endpoint"}, 400)

        def run() -> None:
            with contextlib.suppress(InvocationFailed):  # the invoker has logged it
                self._invoker.invoke(spec, trigger)

        threading.Thread(target=run, name=f"admin-{spec.name}", daemon=True).start()
        return Response(status=202)


class HttpServer:
    """The threaded server in a background thread."""

    def __init__(self, host: str, port: int, app: HttpFrontend) -> None:
        self._server: BaseWSGIServer = make_server(host, port, app, threaded=True)
        self.port = self._server.server_port
        self._thread = threading.Thread(target=self._server.serve_forever, name="http", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
