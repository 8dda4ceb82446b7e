"""The function app. It only registers blueprints; each trigger family lives in `functions/`."""

import azure.functions as func

from functions import intake

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)

app.register_functions(intake.bp)
