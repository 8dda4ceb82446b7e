"""Bulk send triggers: `signing-bulk/{job}/job.json` starts a job; `bulk-feed` runs its steps.

The HTTP side (POST /api/bulk-sends and friends) is in functions/api.py with the rest of the API. As in
the other trigger modules, the modules that do the work are imported inside the functions.
"""

from __future__ import annotations

import azure.functions as func
import azurefunctions.extensions.bindings.blob as blob

from shared.bindings import BLOB_SOURCE
from shared.storage import names

bp = func.Blueprint()


@bp.function_name("bulk_job_uploaded")
@bp.blob_trigger(arg_name="job", path=f"{names.BULK_CONTAINER}/{{job}}/{names.BULK_JOB_NAME}",
                 connection=names.DOCUMENT_STORAGE_CONNECTION, source=BLOB_SOURCE)
def bulk_job_uploaded(job: blob.BlobClient, context: func.Context) -> None:
    from shared.bulk import jobs
    from shared.pipeline import services

    services.on_invocation(context, lambda use: jobs.start_from_blob(use.store, use.settings, job))


@bp.function_name("bulk_feed_step")
@bp.queue_trigger(arg_name="message", queue_name=names.BULK_FEED_QUEUE, connection=names.DOCUMENT_STORAGE_CONNECTION)
def bulk_feed_step(message: func.QueueMessage, context: func.Context) -> None:
    from shared.bulk import feeder
    from shared.messages import BulkFeedMessage
    from shared.pipeline import services

    services.on_message(message, context, BulkFeedMessage, names.BULK_FEED_QUEUE, lambda use, payload:
                        feeder.run_step(use.store, use.settings, payload["job"], payload["step"],
                                        client=use.queue_connective))
