"""Binding parameters the trigger decorators need when the worker indexes the app.

A decorator's arguments are fixed at import, before any invocation, so the blob triggers' source is
read from the settings then, once, here; every blob trigger module uses this value.
"""

from __future__ import annotations

import azure.functions as func

from shared.config import Settings


def blob_trigger_source(settings: Settings) -> func.BlobSource:
    """`EventGrid` on Flex Consumption (BLOB_TRIGGER_SOURCE), container scans where the host polls."""
    if settings.blob_trigger_source == "EventGrid":
        return func.BlobSource.EVENT_GRID
    return func.BlobSource.LOGS_AND_CONTAINER_SCAN


BLOB_SOURCE = blob_trigger_source(Settings.current())
