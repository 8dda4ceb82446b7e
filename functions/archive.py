"""`archive-requests` queue trigger: archive a Finished package into signed-documents/.

Azure imports every trigger module at each cold start, before the first invocation: the modules
that do the work are imported inside the functions, by the first invocation that needs them.
"""

from __future__ import annotations

import azure.functions as func

from shared.storage import names

bp = func.Blueprint()


@bp.queue_trigger(arg_name="message", queue_name=names.ARCHIVE_REQUESTS_QUEUE,
                  connection=names.DOCUMENT_STORAGE_CONNECTION)
def archive_signed_package(message: func.QueueMessage, context: func.Context) -> None:
    from shared.pipeline import services
    from shared.pipeline.archive import handle_archive_request

    services.on_package_message(message, context, names.ARCHIVE_REQUESTS_QUEUE, "package.archive", lambda use, payload:
                                handle_archive_request(use.store, use.queue_connective(), use.settings, payload))
