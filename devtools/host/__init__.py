"""A local stand-in for the Azure Functions host (`func start`), driving a v2-model Python app.

`python -m devtools.host` imports the app module, reads every function's bindings from
`app.get_functions()` and serves them against real storage: HTTP routes, blob, queue and timer
triggers, and queue/blob/table output bindings. See docs/LOCAL_HOST.md.
"""
