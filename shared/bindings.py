"""Binding parameters the trigger decorators need when the worker indexes the app.

A decorator's arguments are fixed at import, before any invocation, so the blob triggers' source is
read from the settings then, once, here; every blob trigger module uses this value.
"""

from __future__ import annotations

import azure.functions as func

from shared.environment import index_time_value


def blob_trigger_source(value: str | None) -> func.BlobSource:
    """`EventGrid` on Flex Consumption (BLOB_TRIGGER_SOURCE), container scans where the host polls.

    Read raw (shared.environment explains why); `Settings.blob_trigger_source` validates the same value
    at the first invocation, so a misspelt one is reported there with every other bad setting.
    """
    if (value or "").strip().lower() == "eventgrid":
        return func.BlobSource.EVENT_GRID
    return func.BlobSource.LOGS_AND_CONTAINER_SCAN


BLOB_SOURCE = blob_trigger_source(index_time_value("BLOB_TRIGGER_SOURCE"))
