"""A local stand-in for the Azure Functions host (`func start`), driving a v2-model Python app.

`python -m devtools.host` starts Microsoft's worker library (`azure_functions_runtime`) in process,
lets it index the app, and serves every function its metadata lists against real storage: HTTP
routes, blob, queue and timer triggers, blob inputs, and queue/blob/table output bindings. Every
invocation goes through the worker. See docs/LOCAL_HOST.md.
"""
