"""The HTTP API for Power Automate and Logic Apps: models, handlers, OpenAPI and errors."""
