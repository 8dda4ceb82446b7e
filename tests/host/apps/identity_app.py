"""A blob trigger on an identity-based connection (no connection string): the worker's blob extension
builds the BlobClient from `DocumentStorage__blobServiceUri`, `__credential` and `__clientId`."""

from __future__ import annotations

import json

import azure.functions as func
from azurefunctions.extensions.bindings import blob as sdk_blob

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)


@app.blob_trigger(arg_name="client", path="identity-in/{name}", connection="DocumentStorage")
@app.blob_output(arg_name="report", path="identity-out/{name}.json", connection="DocumentStorage")
def identity_blob(client: sdk_blob.BlobClient, report: func.Out[str]) -> None:
    content = client.download_blob().readall()
    report.set(json.dumps({"size": len(content), "url": client.url, "client_type": type(client).__module__,
                           "credential": type(client.credential).__name__}))
