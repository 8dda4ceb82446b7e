"""`webhook-events` queue trigger: one signed delivery attempt per message."""

from __future__ import annotations

import json

import azure.functions as func

from shared.config import Settings
from shared.logging import invocation_scope
from shared.storage import names
from shared.storage.store import shared_store
from shared.webhooks.delivery import deliver

bp = func.Blueprint()


@bp.queue_trigger(arg_name="message", queue_name=names.WEBHOOK_EVENTS_QUEUE,
                  connection=names.DOCUMENT_STORAGE_CONNECTION)
def deliver_webhook_event(message: func.QueueMessage, context: func.Context) -> None:
    with invocation_scope(context.invocation_id, context.function_name):
        settings = Settings()
        deliver(settings, shared_store(settings), json.loads(message.get_body()))
