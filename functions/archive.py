"""`archive-requests` queue trigger: archive a Finished package into signed-documents/.

Azure imports every trigger module at each cold start, before the first invocation: the modules
that do the work are imported inside the functions, by the first invocation that needs them.
"""

from __future__ import annotations

import azure.functions as func

from shared.logging import package_scope
from shared.storage import names

bp = func.Blueprint()


@bp.queue_trigger(arg_name="message", queue_name=names.ARCHIVE_REQUESTS_QUEUE,
                  connection=names.DOCUMENT_STORAGE_CONNECTION)
def archive_signed_package(message: func.QueueMessage, context: func.Context) -> None:
    from shared.config import Settings
    from shared.connection import connective_client
    from shared.messages import PackageMessage, read_message
    from shared.pipeline.archive import handle_archive_request
    from shared.storage.store import shared_store
    from shared.telemetry import SpanKind, invocation, package_step

    payload = read_message(message.get_body(), PackageMessage, names.ARCHIVE_REQUESTS_QUEUE, message.id)
    if payload is None:
        return
    ref = payload["packageRef"]
    with invocation(context), package_scope(ref), \
            package_step("package.archive", ref, payload.get("traceparent"), kind=SpanKind.CONSUMER):
        settings = Settings.current()
        client = connective_client(settings).with_rate_wait(settings.queue_rate_wait_s)
        handle_archive_request(shared_store(settings), client, settings, payload)
