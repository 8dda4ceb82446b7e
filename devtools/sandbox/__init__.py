"""A stateful local stand-in for the Connective eSignatures API v3 (see docs/SANDBOX.md)."""
