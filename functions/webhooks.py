"""`webhook-events` queue trigger: one signed delivery attempt per message.

Azure imports every trigger module at each cold start, before the first invocation: the modules
that do the work are imported inside the functions, by the first invocation that needs them.
"""

from __future__ import annotations

import azure.functions as func

from shared.storage import names

bp = func.Blueprint()


@bp.queue_trigger(arg_name="message", queue_name=names.WEBHOOK_EVENTS_QUEUE,
                  connection=names.DOCUMENT_STORAGE_CONNECTION)
def deliver_webhook_event(message: func.QueueMessage, context: func.Context) -> None:
    from shared.config import Settings
    from shared.messages import WebhookDeliveryMessage, read_message
    from shared.storage.store import shared_store
    from shared.telemetry import invocation
    from shared.webhooks.delivery import deliver

    with invocation(context):
        payload = read_message(message.get_body(), WebhookDeliveryMessage, names.WEBHOOK_EVENTS_QUEUE, message.id)
        if payload is None:
            return
        settings = Settings.current()
        deliver(settings, shared_store(settings), payload)
