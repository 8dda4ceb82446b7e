"""Blob input bindings: a queue message names a blob; the function gets it as bytes and as the SDK's
BlobClient (ModelBindingData), both from a path resolved with the message's JSON properties."""

from __future__ import annotations

import json

import azure.functions as func
from azurefunctions.extensions.bindings import blob as sdk_blob

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)

CONNECTION = "DocumentStorage"


@app.queue_trigger(arg_name="msg", queue_name="input-requests", connection=CONNECTION)
@app.blob_input(arg_name="content", path="inputs/{name}", connection=CONNECTION, data_type="BINARY")
@app.blob_input(arg_name="client", path="inputs/{name}", connection=CONNECTION)
@app.blob_output(arg_name="report", path="input-reports/{name}.json", connection=CONNECTION)
def read_input(msg: func.QueueMessage, content: bytes, client: sdk_blob.BlobClient, report: func.Out[str]) -> None:
    report.set(json.dumps({"content": content.decode(), "client_blob": client.blob_name,
                           "client_size": len(client.download_blob().readall())}))
