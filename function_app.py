"""The function app. It installs log redaction and registers blueprints; each trigger family lives in `functions/`."""

import azure.functions as func

from functions import api, archive, bulk, callbacks, intake, maintenance, webhooks
from shared.logging import install_redaction

# Secrets never reach a log line, whichever module writes it: the worker's handlers scrub every record.
install_redaction()

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)

app.register_functions(intake.bp)
app.register_functions(callbacks.bp)
app.register_functions(archive.bp)
app.register_functions(api.bp)
app.register_functions(webhooks.bp)
app.register_functions(maintenance.bp)
app.register_functions(bulk.bp)
