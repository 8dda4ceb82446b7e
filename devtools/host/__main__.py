"""`python -m devtools.host`: serve a v2-model function app locally, as `func start` would."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path

from devtools.host import logs
from devtools.host.blobs import HOST_CONNECTION
from devtools.host.channel import WorkerError
from devtools.host.config import HostConfigError, load_local_settings
from devtools.host.functions import HTTP_TRIGGER, FunctionSpec
from devtools.host.invoke import Invoker
from devtools.host.keys import ANONYMOUS, HostKeys
from devtools.host.outputs import OutputWriter
from devtools.host.storage import StorageAccounts
from devtools.host.supervisor import WorkerSupervisor
from devtools.host.web import HttpFrontend, HttpServer
from devtools.host.worker import HostOptions, http_threads, load_host

READY_LINE = "Host is ready"
WORKER_START_TIMEOUT_S = 90.0


def parse_args(argv: list[str] | None) -> HostOptions:
    parser = argparse.ArgumentParser(prog="python -m devtools.host", description=__doc__)
    parser.add_argument("--app", default="function_app", help="module that defines the FunctionApp")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=7071, help="HTTP port (0: any free port)")
    parser.add_argument("--workers", type=int, default=1,
                        help="worker processes for queue, blob and timer triggers (0: HTTP only)")
    parser.add_argument("--settings", type=Path, default=Path("local.settings.json"),
                        help="local.settings.json whose Values fill in the environment")
    parser.add_argument("--host-json", type=Path, help="host.json (default: beside the app module)")
    parser.add_argument("--max-body-mb", type=float, default=100.0, help="largest HTTP request body")
    args = parser.parse_args(argv)
    if args.workers < 0:
        parser.error("--workers must be 0 or more")
    return HostOptions(app=args.app, host=args.host, port=args.port, workers=args.workers, settings=args.settings,
                       host_json=args.host_json, max_body_mb=args.max_body_mb)


def _banner(specs: list[FunctionSpec], frontend: HttpFrontend, keys: HostKeys, base_url: str) -> None:
    print("\nFunctions:", flush=False)
    for spec in specs:
        if spec.trigger.type == HTTP_TRIGGER:
            methods = ",".join(spec.trigger.get("methods") or ["GET", "POST", "PUT", "PATCH", "DELETE"])
            auth = str(spec.trigger.get("authLevel", "function")).lower()
            print(f"  {spec.name}: [{methods}] {base_url}/{frontend.routes[spec.name]}  (auth: {auth})")
        else:
            detail = spec.trigger.get("path") or spec.trigger.get("queueName") or spec.trigger.get("schedule")
            print(f"  {spec.name}: {spec.trigger.type} {detail}")
    if any(str(s.trigger.get("authLevel", "function")).lower() != ANONYMOUS for s in specs
           if s.trigger.type == HTTP_TRIGGER):
        source = "generated; set HOST_FUNCTION_KEYS to fix it" if "HOST_FUNCTION_KEYS" in keys.generated \
            else "from HOST_FUNCTION_KEYS"
        print(f"\nFunction key ({source}): {keys.function_keys[0]}")
        print("  send it as ?code=<key> or in the x-functions-key header")
        if "HOST_MASTER_KEY" in keys.generated:
            print(f"Master key (generated; set HOST_MASTER_KEY to fix it): {keys.master_key}")
    print(flush=True)


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    # Workers inherit the environment, so the settings file is read once, here.
    load_local_settings(options.settings)
    logs.configure()
    try:
        specs, host_json, host_id, channel = load_host(options)
    except (HostConfigError, WorkerError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    needs_storage = any(spec.trigger.type != HTTP_TRIGGER for spec in specs)
    if needs_storage and not os.environ.get(HOST_CONNECTION):
        print("error: AzureWebJobsStorage is not set; the host keeps receipts, timer status and locks there",
              file=sys.stderr)
        return 2
    keys = HostKeys.from_settings()
    storage = StorageAccounts()
    channel.start_pool(http_threads(specs))
    invoker = Invoker(channel, OutputWriter(storage, host_json.queues.message_encoding), storage)
    supervisor = WorkerSupervisor(options if needs_storage else HostOptions(**{**vars(options), "workers": 0}))
    state = {"value": "Initializing"}

    def status() -> dict[str, object]:
        return {"state": state["value"], "id": host_id, "workers": supervisor.status(),
                "functions": [spec.name for spec in specs],
                "routes": {name: f"/{route}" for name, route in frontend.routes.items()}}

    frontend = HttpFrontend(specs, host_json.route_prefix, keys, invoker, int(options.max_body_mb * 1024 * 1024),
                            status)
    server = HttpServer(options.host, options.port, frontend)
    base_url = f"http://{options.host}:{server.port}"
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    server.start()
    try:
        supervisor.start()
        if not supervisor.wait_ready(WORKER_START_TIMEOUT_S):
            print("error: the worker processes did not start; see their output above", file=sys.stderr)
            return 1
        _banner(specs, frontend, keys, base_url)
        state["value"] = "Running"
        print(f"{READY_LINE}: {base_url} (host id {host_id}, workers {supervisor_count(supervisor)})", flush=True)
        while not stopping.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        state["value"] = "Stopping"
        server.stop()
        supervisor.stop()
        print("Host stopped.", flush=True)
    return 0


def supervisor_count(supervisor: WorkerSupervisor) -> int:
    return len(supervisor.status())


if __name__ == "__main__":
    sys.exit(main())
