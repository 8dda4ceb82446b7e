"""Intake triggers: PDFs in signing-inbox/, manifests in signing-batches/, and the package-requests queue.

The blob triggers bind the SDK type `BlobClient`, so a document is streamed, never loaded into
memory by the host. They only validate and record; `create_package_from_request` talks to Connective.

Azure imports every trigger module at each cold start, before the first invocation: the modules
that do the work are imported inside the functions, by the first invocation that needs them.
"""

from __future__ import annotations

import azure.functions as func
import azurefunctions.extensions.bindings.blob as blob

from shared.bindings import BLOB_SOURCE
from shared.storage import names

bp = func.Blueprint()


@bp.function_name("intake_inbox_blob")
@bp.blob_trigger(arg_name="document", path=f"{names.INBOX_CONTAINER}/{{name}}",
                 connection=names.DOCUMENT_STORAGE_CONNECTION, source=BLOB_SOURCE)
def intake_inbox_blob(document: blob.BlobClient, context: func.Context) -> None:
    from shared.pipeline import intake, services

    services.on_invocation(context, lambda use: intake.intake_inbox_blob(use.store, use.settings, document))


@bp.function_name("intake_batch_manifest")
@bp.blob_trigger(arg_name="manifest", path=f"{names.BATCHES_CONTAINER}/{{batch}}/{names.BATCH_MANIFEST_NAME}",
                 connection=names.DOCUMENT_STORAGE_CONNECTION, source=BLOB_SOURCE)
def intake_batch_manifest(manifest: blob.BlobClient, context: func.Context) -> None:
    from shared.pipeline import intake, services

    services.on_invocation(context, lambda use: intake.intake_batch_manifest(use.store, use.settings, manifest))


@bp.function_name("create_package_from_request")
@bp.queue_trigger(arg_name="message", queue_name=names.PACKAGE_REQUESTS_QUEUE,
                  connection=names.DOCUMENT_STORAGE_CONNECTION)
def create_package_from_request(message: func.QueueMessage, context: func.Context) -> None:
    from shared.pipeline import creation, services

    services.on_package_message(message, context, names.PACKAGE_REQUESTS_QUEUE, "package.create", lambda use, payload:
                                creation.create(payload["packageRef"], store=use.store, settings=use.settings,
                                                client=use.creation_client(payload["packageRef"])))
