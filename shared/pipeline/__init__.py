"""The signing pipeline: intake, package creation, callbacks and archive."""
