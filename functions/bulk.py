"""Bulk send triggers: `signing-bulk/{job}/job.json` starts a job; `bulk-feed` runs its steps.

The HTTP side (POST /api/bulk-sends and friends) is in functions/api.py with the rest of the API. As in
the other trigger modules, the modules that do the work are imported inside the functions.
"""

from __future__ import annotations

import json

import azure.functions as func
import azurefunctions.extensions.bindings.blob as blob

from shared.bindings import BLOB_SOURCE
from shared.logging import get_logger, log_event
from shared.storage import names

bp = func.Blueprint()
logger = get_logger(__name__)


@bp.function_name("bulk_job_uploaded")
@bp.blob_trigger(arg_name="job", path=f"{names.BULK_CONTAINER}/{{job}}/{names.BULK_JOB_NAME}",
                 connection=names.DOCUMENT_STORAGE_CONNECTION, source=BLOB_SOURCE)
def bulk_job_uploaded(job: blob.BlobClient, context: func.Context) -> None:
    from shared.bulk import jobs
    from shared.pipeline import services
    from shared.telemetry import invocation

    with invocation(context):
        settings = services.settings()
        jobs.start_from_blob(services.store(settings), settings, job)


@bp.function_name("bulk_feed_step")
@bp.queue_trigger(arg_name="message", queue_name=names.BULK_FEED_QUEUE, connection=names.DOCUMENT_STORAGE_CONNECTION)
def bulk_feed_step(message: func.QueueMessage, context: func.Context) -> None:
    from shared.bulk import feeder
    from shared.bulk.spec import is_valid_job_id
    from shared.pipeline import services
    from shared.telemetry import invocation

    with invocation(context):
        try:
            body = json.loads(message.get_body())
            job_id, step = body["job"], body["step"]
            if not isinstance(job_id, str) or not is_valid_job_id(job_id) or not isinstance(step, int):
                raise ValueError("not a bulk-feed message")
        except (ValueError, KeyError, TypeError):
            log_event(logger, "bulk.bad_message", message_id=message.id)
            return  # nobody can act on it; retrying would only fill the poison queue
        settings = services.settings()
        feeder.run_step(services.store(settings), settings, job_id, step,
                        client=lambda: services.queue_connective(settings))
