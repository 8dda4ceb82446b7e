"""Intake triggers: PDFs in signing-inbox/, manifests in signing-batches/, and the package-requests queue.

The blob triggers bind the SDK type `BlobClient`, so a document is streamed, never loaded into
memory by the host. They only validate and record; `create_package_from_request` talks to Connective.

Azure imports every trigger module at each cold start, before the first invocation: the modules
that do the work are imported inside the functions, by the first invocation that needs them.
"""

from __future__ import annotations

import json

import azure.functions as func
import azurefunctions.extensions.bindings.blob as blob

from shared.bindings import BLOB_SOURCE
from shared.logging import get_logger, log_event, package_scope
from shared.storage import names

bp = func.Blueprint()
logger = get_logger(__name__)


@bp.function_name("intake_inbox_blob")
@bp.blob_trigger(arg_name="document", path=f"{names.INBOX_CONTAINER}/{{name}}",
                 connection=names.DOCUMENT_STORAGE_CONNECTION, source=BLOB_SOURCE)
def intake_inbox_blob(document: blob.BlobClient, context: func.Context) -> None:
    from shared.pipeline import intake, services
    from shared.telemetry import invocation

    with invocation(context):
        settings = services.settings()
        intake.intake_inbox_blob(services.store(settings), settings, document)


@bp.function_name("intake_batch_manifest")
@bp.blob_trigger(arg_name="manifest", path=f"{names.BATCHES_CONTAINER}/{{batch}}/{names.BATCH_MANIFEST_NAME}",
                 connection=names.DOCUMENT_STORAGE_CONNECTION, source=BLOB_SOURCE)
def intake_batch_manifest(manifest: blob.BlobClient, context: func.Context) -> None:
    from shared.pipeline import intake, services
    from shared.telemetry import invocation

    with invocation(context):
        settings = services.settings()
        intake.intake_batch_manifest(services.store(settings), settings, manifest)


@bp.function_name("create_package_from_request")
@bp.queue_trigger(arg_name="message", queue_name=names.PACKAGE_REQUESTS_QUEUE,
                  connection=names.DOCUMENT_STORAGE_CONNECTION)
def create_package_from_request(message: func.QueueMessage, context: func.Context) -> None:
    from shared.bulk import pacing
    from shared.bulk.spec import is_bulk_package_ref
    from shared.pipeline import creation, services
    from shared.storage.packages import is_valid_package_ref
    from shared.telemetry import SpanKind, invocation, package_step

    with invocation(context):
        try:
            payload = json.loads(message.get_body())
            ref = payload["packageRef"]
            if not isinstance(ref, str) or not is_valid_package_ref(ref):
                raise ValueError("not a package reference")
        except (ValueError, KeyError, TypeError):
            log_event(logger, "creation.bad_message", message_id=message.id)
            return  # a message nobody can act on; retrying it would only fill the poison queue
        with package_scope(ref), \
                package_step("package.create", ref, payload.get("traceparent"), kind=SpanKind.CONSUMER):
            settings = services.settings()
            # A bulk send's package also draws from the bulk share of the budget (shared.bulk.pacing).
            client = (pacing.bulk_creation_client(settings) if is_bulk_package_ref(ref)
                      else services.queue_connective(settings))
            creation.create(ref, store=services.store(settings), settings=settings, client=client)
