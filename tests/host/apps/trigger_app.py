"""A small app that uses every trigger kind the local host serves; each invocation writes a row to
the table `HostCalls` (through a table output binding), so tests can see what ran and how often."""

from __future__ import annotations

import json
import os
import time
import uuid

import azure.functions as func
from azurefunctions.extensions.bindings import blob as sdk_blob

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)

CONNECTION = "DocumentStorage"
CALLS_TABLE = "HostCalls"


def record(row: func.Out[str], function: str, **fields: object) -> None:
    row.set(json.dumps({"PartitionKey": function, "RowKey": str(uuid.uuid4()), "pid": os.getpid(), **fields}))


@app.route(route="items/{id:int}/{label?}", methods=["GET", "POST"])
@app.queue_output(arg_name="out", queue_name="http-out", connection=CONNECTION)
def http_items(req: func.HttpRequest, out: func.Out[str]) -> func.HttpResponse:
    body = req.get_body()
    if req.method == "POST":
        out.set(body.decode())
    payload = {"id": req.route_params.get("id"), "label": req.route_params.get("label"),
               "query": dict(req.params), "body_len": len(body), "method": req.method}
    return func.HttpResponse(json.dumps(payload), mimetype="application/json")


@app.route(route="public/ping", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
async def http_public(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("pong", status_code=201, headers={"X-Test": "yes"})


@app.route(route="admin-only", auth_level=func.AuthLevel.ADMIN)
def http_admin(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("admin")


@app.route(route="boom", auth_level=func.AuthLevel.ANONYMOUS)
def http_boom(req: func.HttpRequest) -> func.HttpResponse:
    raise RuntimeError("this function always fails")


@app.blob_trigger(arg_name="doc", path="%TEST_INBOX_CONTAINER%/{name}", connection=CONNECTION)
@app.blob_output(arg_name="copy", path="processed/{name}.copy", connection=CONNECTION)
@app.table_output(arg_name="row", table_name=CALLS_TABLE, connection=CONNECTION)
def blob_inbox(doc: func.InputStream, copy: func.Out[bytes], row: func.Out[str]) -> None:
    content = doc.read()
    if "poison" in (doc.name or ""):
        raise ValueError("poison document")
    copy.set(content.upper())
    record(row, "blob_inbox", blob=doc.name, length=doc.length, etag=(doc.blob_properties or {}).get("ETag"))


@app.blob_trigger(arg_name="client", path="sdk-in/{name}", connection=CONNECTION, source=func.BlobSource.EVENT_GRID)
@app.table_output(arg_name="row", table_name=CALLS_TABLE, connection=CONNECTION)
def blob_sdk(client: sdk_blob.BlobClient, row: func.Out[str]) -> None:
    size = 0
    for chunk in client.download_blob().chunks():
        size += len(chunk)
    record(row, "blob_sdk", blob=client.blob_name, size=size, client_type=type(client).__module__)


@app.queue_trigger(arg_name="msg", queue_name="work-items", connection=CONNECTION)
@app.table_output(arg_name="row", table_name=CALLS_TABLE, connection=CONNECTION)
def queue_work(msg: func.QueueMessage, row: func.Out[str], context: func.Context) -> None:
    body = msg.get_json()
    if body.get("sleep"):
        time.sleep(float(body["sleep"]))
    if body.get("fail"):
        raise RuntimeError("asked to fail")
    record(row, "queue_work", item=str(body["id"]), dequeue_count=msg.dequeue_count, message_id=msg.id,
           invocation_id=context.invocation_id)


@app.queue_trigger(arg_name="msg", queue_name="failing-items", connection=CONNECTION)
def queue_failing(msg: func.QueueMessage) -> None:
    raise RuntimeError(f"attempt {msg.dequeue_count} fails")


@app.timer_trigger(arg_name="timer", schedule="%TEST_TIMER_SCHEDULE%", use_monitor=True)
@app.table_output(arg_name="row", table_name=CALLS_TABLE, connection=CONNECTION)
def timer_tick(timer: func.TimerRequest, row: func.Out[str]) -> None:
    record(row, "timer_tick", past_due=timer.past_due, fired_at=time.time())
