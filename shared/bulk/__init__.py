"""Bulk send: one document to many recipients, each in their own package (docs/BULK_SEND.md)."""
