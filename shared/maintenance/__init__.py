"""Scheduled upkeep: reminders, expiry extensions, reconciliation and stuck creations, driven by the
`PackageSchedule` index (shared.storage.schedule) within a share of the connection's rate budget.
See docs/MAINTENANCE.md."""
