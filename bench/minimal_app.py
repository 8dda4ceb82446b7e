"""The smallest app with the triggers and binding types that function_app.py uses, and no logic.

`bench.startup` compares the import of function_app with the import of this module: what is left
is the cost of the app's own code at a cold start. Like the real app it imports azure.functions
and the blob extension's SDK types (the blob triggers bind `BlobClient`).
"""

from __future__ import annotations

import azure.functions as func
import azurefunctions.extensions.bindings.blob as blob

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)


@app.route(route="minimal", methods=["GET"])
def minimal_http(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return func.HttpResponse("ok")


@app.blob_trigger(arg_name="document", path="minimal-inbox/{name}", connection="DocumentStorage")
def minimal_blob(document: blob.BlobClient, context: func.Context) -> None:
    return None


@app.queue_trigger(arg_name="message", queue_name="minimal-queue", connection="DocumentStorage")
def minimal_queue(message: func.QueueMessage, context: func.Context) -> None:
    return None


@app.timer_trigger(arg_name="timer", schedule="0 0 * * * *", use_monitor=True, run_on_startup=False)
def minimal_timer(timer: func.TimerRequest, context: func.Context) -> None:
    return None
