"""HTTP front of the sandbox: routing, Basic auth, throttling, fault injection, bodies and answers.

The stdlib ThreadingHTTPServer with HTTP/1.1 keep-alive is fast enough (see bench/sandbox_rps.py)
and keeps the sandbox free of a web framework.
"""

from __future__ import annotations

import base64
import hmac
import json
import logging
import re
import shutil
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import parse_qsl, urlsplit

import multipart

from devtools.sandbox import admin, signer_page
from devtools.sandbox.errors import ApiError, bad_request, not_found
from devtools.sandbox.fields import fold
from devtools.sandbox.operations import OPERATIONS, Operation
from devtools.sandbox.sandbox import Sandbox
from devtools.sandbox.throttle import retry_after_header
from devtools.sandbox.wire import ApiRequest, Reply

LOG = logging.getLogger("devtools.sandbox.server")
CHUNK = 1024 * 1024
MAX_DATA_PART_BYTES = 8 * 1024 * 1024  # the multipart Data part (JSON) is read into memory
DRAIN_LIMIT = 64 * 1024  # unread request bodies up to this are drained; larger ones close the connection


@dataclass(frozen=True)
class Route:
    operation: Operation
    pattern: re.Pattern[str]


def _compile_routes() -> list[Route]:
    routes = []
    for operation in OPERATIONS:
        path = re.sub(r"\{(\w+)\}", lambda m: f"(?P<{m.group(1).lower()}>[^/]+)", operation.path)
        for version in operation.versions:
            prefix = re.escape(f"/webportalapi/v{version}")
            routes.append(Route(operation, re.compile(f"^{prefix}{path}/?$", re.IGNORECASE)))
    return routes


ROUTES = _compile_routes()


def match_route(method: str, path: str) -> tuple[Operation, dict[str, str]]:
    path_known = False
    for route in ROUTES:
        found = route.pattern.match(path)
        if found is None:
            continue
        path_known = True
        if route.operation.method == method:
            version = "3.1" if path.lower().startswith("/webportalapi/v3.1/") else "3"
            return route.operation, {**found.groupdict(), "_version": version}
    if path_known:
        raise ApiError(405, "Request.MethodNotAllowed", f"{method} is not allowed on {path}")
    raise not_found("Request.UnknownRoute", f"no operation at {path}")


class ChunkedReader:
    """A file-like view of a `Transfer-Encoding: chunked` request body."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self._left = 0
        self._done = False

    def read(self, size: int = -1) -> bytes:
        out = bytearray()
        while not self._done and (size < 0 or len(out) < size):
            if self._left == 0:
                line = self._raw.readline(1024)
                self._left = int(line.split(b";")[0].strip() or b"0", 16)
                if self._left == 0:
                    while self._raw.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    self._done = True
                    break
            wanted = self._left if size < 0 else min(self._left, size - len(out))
            piece = self._raw.read(wanted)
            if not piece:
                raise ConnectionError("request body ended early")
            out += piece
            self._left -= len(piece)
            if self._left == 0:
                self._raw.readline(16)
        return bytes(out)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle on, delayed ACKs cap a client near 25 calls/s.
    disable_nagle_algorithm = True
    server_version = "ConnectiveSandbox/1.0"
    sandbox: Sandbox  # set on the subclass made by make_server

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: a line per request would cost more than the request."""

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    # ----- dispatch --------------------------------------------------------------------------------
    def _dispatch(self) -> None:
        self._body_consumed = False
        url = urlsplit(self.path)
        path = url.path
        query = dict(parse_qsl(url.query, keep_blank_values=True))
        try:
            if path.startswith("/_sandbox/"):
                self._admin(path[len("/_sandbox/"):], query)
            elif path.startswith("/sign/") or path == "/signinit":
                self._signer_page(path, query)
            elif path.lower().startswith("/webportalapi/"):
                self._api(path, query)
            else:
                self._send_json(404, {"ErrorCode": "Request.UnknownRoute", "Message": f"nothing at {path}"})
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        finally:
            self._finish_body()

    def _admin(self, path: str, query: dict[str, str]) -> None:
        if self.client_address[0] not in ("127.0.0.1", "::1", "::ffff:127.0.0.1"):
            self._send_json(403, {"error": "the admin API answers loopback clients only"})
            return
        try:
            body = self._read_json(fold_keys=False) if self.command == "POST" else {}
            status, payload = admin.handle(self.sandbox, self.command, path, body, query)
        except ApiError as error:
            status, payload = error.status, {"error": error.message, "code": error.code}
        self._send_json(status, payload)

    def _signer_page(self, path: str, query: dict[str, str]) -> None:
        form = {}
        if self.command == "POST":
            form = dict(parse_qsl(self._read_all().decode("utf-8", "replace"), keep_blank_values=True))
        page = signer_page.handle(self.sandbox, self.command, path, query, form)
        self._send(page.status, page.body, page.content_type, page.headers)

    def _api(self, path: str, query: dict[str, str]) -> None:
        sandbox = self.sandbox
        knobs = sandbox.knobs
        try:
            operation, params = match_route(self.command, path)
            user = self._authenticate()
        except ApiError as error:
            self._send_error(error, knobs.error_format)
            return
        wait_s = sandbox.throttle.try_acquire(user, knobs.rate_calls, knobs.rate_window)
        if wait_s is not None:
            sandbox.stats.record_throttled(user)
            throttled = ApiError(429, "Request.Throttled",
                                 f"more than {knobs.rate_calls} calls in {knobs.rate_window:g} s",
                                 {"Retry-After": retry_after_header(wait_s)})
            self._send_error(throttled, knobs.error_format)
            return
        sandbox.stats.record_accepted(user)
        version = params.pop("_version")
        if knobs.latency_ms:
            sandbox.stats.record_fault("latency")
            time.sleep(knobs.latency_ms / 1000)
        fault = self._pick_fault(knobs.fault_500_rate, knobs.fault_503_rate)
        if fault is not None:
            self._count(operation, user, params.get("id"))
            sandbox.stats.record_fault(str(fault.status))
            self._send_error(fault, knobs.error_format)
            return
        reply = self._run(operation, params, query, user, version)
        self._count(operation, user, reply.package_id or params.get("id"))
        if knobs.hang_rate and sandbox.rng.random() < knobs.hang_rate:
            # The change is applied; the answer comes too late for the client, which sees an ambiguous outcome.
            sandbox.stats.record_fault("hang")
            time.sleep(knobs.hang_seconds)
        self._send_reply(reply, knobs.error_format)

    def _count(self, operation: Operation, user: str, package_id: str | None) -> None:
        package_id = package_id.lower() if package_id else None
        reference = self.sandbox.references.get(package_id or "")
        self.sandbox.stats.record_call(operation.name, user, package_id, reference)

    def _pick_fault(self, rate_500: float, rate_503: float) -> ApiError | None:
        if not rate_500 and not rate_503:
            return None
        draw = self.sandbox.rng.random()
        if draw < rate_500:
            return ApiError(500, "Server.InjectedFault", "injected internal server error")
        if draw < rate_500 + rate_503:
            return ApiError(503, "Server.Unavailable", "injected service unavailable", {"Retry-After": "1"})
        return None

    def _run(self, operation: Operation, params: dict[str, str], query: dict[str, str], user: str,
             version: str) -> Reply:
        files: dict[str, Path] = {}
        try:
            data, files = self._read_api_body()
            request = ApiRequest(params=params, query={k.lower(): v for k, v in query.items()}, user=user,
                                 data=data, files=files, version=version)
            carries_documents, received_at = bool(files), time.perf_counter()
            reply = operation.handler(self.sandbox, request)  # takes the parts it keeps out of `files`
            package_id = reply.package_id or params.get("id")
            if carries_documents and package_id:
                self.sandbox.stats.record_upload_handling(package_id.lower(), time.perf_counter() - received_at)
            return reply
        except ApiError as error:
            return Reply(error.status, json=error, headers=error.headers)
        except Exception:
            LOG.exception("operation %s failed", operation.name)
            return Reply(500, json=ApiError(500, "Server.Error", "unexpected sandbox error"))
        finally:
            for path in files.values():  # parts the operation did not take
                path.unlink(missing_ok=True)

    # ----- auth ------------------------------------------------------------------------------------
    def _authenticate(self) -> str:
        header = self.headers.get("Authorization", "")
        user = password = None
        if header[:6].lower() == "basic ":
            try:
                user, _, password = base64.b64decode(header[6:].strip()).decode("utf-8").partition(":")
            except (ValueError, UnicodeDecodeError):
                user = None
        expected = self.sandbox.users.get(user or "")
        if user is None or expected is None or not hmac.compare_digest(expected.encode(), (password or "").encode()):
            self.sandbox.stats.record_unauthorized()
            raise ApiError(401, "Authentication.Failed", "valid Basic credentials are required",
                           {"WWW-Authenticate": 'Basic realm="Connective sandbox"'})
        return user

    # ----- request bodies --------------------------------------------------------------------------
    def _body_stream(self) -> tuple[BinaryIO | ChunkedReader, int]:
        self._body_consumed = True
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return ChunkedReader(self.rfile), -1  # type: ignore[arg-type]
        return self.rfile, int(self.headers.get("Content-Length") or 0)  # type: ignore[return-value]

    def _read_all(self) -> bytes:
        stream, length = self._body_stream()
        return stream.read(length) if length >= 0 else stream.read()

    def _read_json(self, fold_keys: bool = True) -> Any:
        raw = self._read_all()
        if not raw.strip():
            return {}
        try:
            value = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise bad_request("Request.InvalidJson", "the body is not valid JSON") from None
        return fold(value) if fold_keys else value

    def _read_api_body(self) -> tuple[dict[str, Any], dict[str, Path]]:
        content_type = self.headers.get("Content-Type", "")
        if content_type.lower().startswith("multipart/form-data"):
            return self._read_multipart(content_type)
        data = self._read_json()
        if not isinstance(data, dict):
            raise bad_request("Request.InvalidJson", "the body must be a JSON object")
        return data, {}

    def _read_multipart(self, content_type: str) -> tuple[dict[str, Any], dict[str, Path]]:
        """The Data part as JSON, and every other part written straight into the document store as it arrives."""
        _, options = multipart.parse_options_header(content_type)
        boundary = options.get("boundary")
        if not boundary:
            raise bad_request("Request.InvalidMultipart", "multipart body without a boundary")
        stream, length = self._body_stream()
        parser = multipart.PushMultipartParser(boundary, content_length=length)
        data: dict[str, Any] = {}
        files: dict[str, Path] = {}
        json_part: bytearray | None = None
        charset = "utf-8"
        target: BinaryIO | None = None
        try:
            for event in parser.parse_blocking(stream.read, CHUNK):
                if isinstance(event, multipart.MultipartSegment):
                    name = (event.name or "").lower()
                    if name == "data" and event.filename is None:
                        json_part, charset = bytearray(), event.charset or "utf-8"
                    else:
                        if name in files:
                            files.pop(name).unlink(missing_ok=True)
                        files[name] = self.sandbox.store.new_path()
                        target = files[name].open("wb")
                elif event and target is not None:
                    target.write(event)
                elif event and json_part is not None:
                    json_part += event
                    if len(json_part) > MAX_DATA_PART_BYTES:
                        raise ValueError(f"the Data part is larger than {MAX_DATA_PART_BYTES} bytes")
                elif target is not None:  # the end of a file part
                    target.close()
                    target = None
                elif json_part is not None:  # the end of the Data part
                    parsed = json.loads(json_part.decode(charset) or "{}")
                    if not isinstance(parsed, dict):
                        raise ValueError("Data must be a JSON object")
                    data, json_part = fold(parsed), None
        except BaseException as error:
            if target is not None:
                target.close()
            for path in files.values():
                path.unlink(missing_ok=True)
            if isinstance(error, multipart.MultipartError | ValueError):
                raise bad_request("Request.InvalidMultipart", f"the multipart body is malformed: {error}") from None
            raise
        return data, files

    def _finish_body(self) -> None:
        """Keep the connection usable: drain a small unread body, or close after a large one."""
        if self._body_consumed:
            return
        length = int(self.headers.get("Content-Length") or 0)
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower() or length > DRAIN_LIMIT:
            self.close_connection = True
        elif length:
            self.rfile.read(length)

    # ----- answers ---------------------------------------------------------------------------------
    def _send_error(self, error: ApiError, error_format: str) -> None:
        self.sandbox.stats.record_status(error.status)
        body = error.body(error_format, self.sandbox.knobs.error_message_key)
        self._send(error.status, json.dumps(body).encode(), "application/json; charset=utf-8", error.headers)

    def _send_reply(self, reply: Reply, error_format: str) -> None:
        if isinstance(reply.json, ApiError):
            reply.headers = {**reply.json.headers, **reply.headers}
            self._send_error(reply.json, error_format)
            return
        self.sandbox.stats.record_status(reply.status)
        if reply.file is not None:
            self._send_file(reply)
        elif reply.json is not None:
            self._send(reply.status, json.dumps(reply.json).encode(), "application/json; charset=utf-8",
                       reply.headers)
        else:
            self._send(reply.status, reply.body or b"", reply.content_type, reply.headers)

    def _send_json(self, status: int, payload: Any) -> None:
        self._send(status, json.dumps(payload, default=str).encode(), "application/json; charset=utf-8", {})

    def _send(self, status: int, body: bytes, content_type: str | None, headers: dict[str, str]) -> None:
        self.send_response(status)
        if content_type and status != 204:
            self.send_header("Content-Type", content_type)
        for name, value in headers.items():
            self.send_header(name, value)
        if status != 204:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if status != 204 and self.command != "HEAD":
            self.wfile.write(body)

    def _send_file(self, reply: Reply) -> None:
        assert reply.file is not None
        try:
            with reply.file.open("rb") as handle:
                size = reply.file.stat().st_size
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type or "application/octet-stream")
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(size))
                self.end_headers()
                shutil.copyfileobj(handle, self.wfile, CHUNK)
        finally:
            if reply.delete_file:
                reply.file.unlink(missing_ok=True)


class SandboxServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256


def make_server(sandbox: Sandbox, host: str, port: int) -> SandboxServer:
    handler = type("BoundHandler", (Handler,), {"sandbox": sandbox})
    return SandboxServer((host, port), handler)
