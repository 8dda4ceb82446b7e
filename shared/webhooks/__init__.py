"""Outgoing webhook events for Power Automate and Logic Apps subscribers."""
