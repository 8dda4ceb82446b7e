"""Scheduled upkeep: reminders, expiry extensions and reconciliation, driven by the `PackageSchedule`
index (shared.storage.schedule) within a share of the connection's rate budget. See docs/MAINTENANCE.md."""
