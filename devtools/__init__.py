"""Local world for the function app: the Connective sandbox, the local Functions host and Azurite."""
