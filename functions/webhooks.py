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
    from shared.messages import WebhookDeliveryMessage
    from shared.pipeline import services
    from shared.webhooks.delivery import deliver

    services.on_message(message, context, WebhookDeliveryMessage, names.WEBHOOK_EVENTS_QUEUE,
                        lambda use, payload: deliver(use.settings, use.store, payload))
