"""Every app setting the code reads, declared once.

The registry below is the single list of setting names. `infra/` must set each one that has no
default (a test checks it), and docs/CONFIGURATION.md documents them. Code reads settings only
through `Settings`, never through `os.environ` directly, so the registry stays complete.

Secrets (`secret=True`) come from Key Vault references in Azure and are never logged.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass

_log = logging.getLogger(__name__)

# App Service puts the reference text itself in the environment when it cannot resolve a Key Vault
# reference (no access yet, secret missing, vault unreachable). Such a value is no setting: used as
# one it would end up in URLs or serve as a secret, so it reads as unset.
_KEY_VAULT_REFERENCE_PREFIX = "@microsoft.keyvault("
_unresolved_reported: set[str] = set()


def is_unresolved_key_vault_reference(value: str | None) -> bool:
    return value is not None and value.lstrip().lower().startswith(_KEY_VAULT_REFERENCE_PREFIX)


def _report_unresolved(name: str) -> None:
    if name not in _unresolved_reported:  # once per process: raw() runs on every read
        _unresolved_reported.add(name)
        # The structured-log shape of shared.logging.log_event, without importing it (it may import this module).
        _log.warning("config.unresolved_key_vault_reference", extra={"fields": {
            "setting": name, "effect": "treated as unset",
            "check": "the secret exists and the app's identity may read it (Key Vault Secrets User)"}})


@dataclass(frozen=True)
class Setting:
    name: str
    default: str | None
    description: str
    secret: bool = False


SETTINGS: tuple[Setting, ...] = (
    # Storage. `DocumentStorage` is the connection name used by the bindings; in Azure it is
    # identity-based (DocumentStorage__blobServiceUri, __queueServiceUri, __tableServiceUri,
    # __credential, __clientId) and locally a connection string.
    Setting("AzureWebJobsStorage", None, "Host storage: receipts, timer status, poison queues."),
    Setting("DocumentStorage", None,
            "Document storage connection string (local) or the prefix of identity-based settings."),
    # Connective connection.
    Setting("CONNECTIVE_BASE_URL", "http://127.0.0.1:7081/webportalapi/v3",
            "Full API v3 base URL, https://host[/prefix]/webportalapi/v3."),
    Setting("CONNECTIVE_USERNAME", None, "API user (Basic auth)."),
    Setting("CONNECTIVE_PASSWORD", None, "API password (Basic auth); a Key Vault reference in Azure.", secret=True),
    Setting("CONNECTIVE_CONNECT_TIMEOUT_S", "5", "Seconds to establish a connection."),
    Setting("CONNECTIVE_READ_TIMEOUT_S", "60", "Seconds to wait between bytes of an answer."),
    Setting("CONNECTIVE_RETRY_MAX_ATTEMPTS", "6", "Attempts per call, the first included."),
    Setting("CONNECTIVE_RETRY_TOTAL_S", "120", "Upper bound on the time one call spends retrying."),
    Setting("CONNECTIVE_RATE_CALLS", "100",
            "Calls allowed per window for this connection. 100 per 60 s is the Connective connector gateway's "
            "documented limit; no public source documents one on the direct REST API."),
    Setting("CONNECTIVE_RATE_WINDOW_S", "60", "Length of the rate window in seconds."),
    Setting("CONNECTIVE_MULTIPART_THRESHOLD_KB", "1024",
            "Documents of this size (KB) or more are uploaded as multipart/form-data, smaller ones as base64 JSON."),
    Setting("CONNECTIVE_RATE_LIMITER", "local",
            "`local` (one process) or `table` (shared by every instance, in Table Storage)."),
    Setting("CONNECTIVE_RATE_LATENCY_MARGIN_S", "0.1",
            "Seconds added to the rate window for the trip from a request leaving the app to the gateway."),
    Setting("CONNECTIVE_RATE_LEASE_SIZE", "5", "Tokens the table limiter takes from the shared budget at once."),
    Setting("CONNECTIVE_RATE_LEASE_VALIDITY_S", "1",
            "Seconds a leased block of tokens stays usable; unused tokens then expire."),
    Setting("CONNECTIVE_RATE_CLOCK_SKEW_S", "0.05",
            "Extra seconds of clock disagreement tolerated between instances on top of the measured one."),
    # Callbacks from Connective.
    Setting("PUBLIC_BASE_URL", "http://127.0.0.1:7071",
            "Public base URL of this function app; callback URLs are built on it."),
    Setting("CALLBACK_SECRETS", None,
            "Comma-separated HMAC secrets for callback tokens; the first signs, all verify (rotation).",
            secret=True),
    Setting("CALLBACK_RATE_WAIT_S", "0.05",
            "Longest wait (s) for a rate token inside the callback; past it the status read goes to status-refresh."),
    Setting("STATUS_REFRESH_DELAY_S", "10",
            "Seconds a callback that reports no final status waits before its status read; callbacks in between "
            "share that one read."),
    Setting("QUEUE_RATE_WAIT_S", "2",
            "Longest wait (s) for a rate token in queue work; past it the message goes back with a delay."),
    Setting("CREATION_LEASE_S", "240",
            "Seconds a creation attempt holds its package row, renewed before each Connective call; a dead worker's "
            "row is resumed once it lapses. Raised when needed to the longest call (QUEUE_RATE_WAIT_S + "
            "CONNECTIVE_RETRY_TOTAL_S + connect and read timeouts) + 15."),
    # Intake.
    Setting("BLOB_TRIGGER_SOURCE", "LogsAndContainerScan",
            "`EventGrid` in Azure (Flex Consumption), `LogsAndContainerScan` where the host polls."),
    Setting("INTAKE_MAX_DOCUMENT_MB", "30",
            "Largest document accepted, in MB (MiB: 1 MB = 1,048,576 bytes). Connective refuses documents over 30 MB, "
            "so a larger one is rejected at intake (document_too_large) before any call."),
    Setting("ITSME_TARGET_TYPE", "PdfA2A",
            "TargetType (PdfA1A or PdfA2A) sent for the documents of a package whose signers may sign with itsme, "
            "which signs PDF/A only."),
    Setting("ROUTING_PROFILES", "",
            "JSON routing profiles by inbox folder; empty means the blob signing-config/routing-profiles.json."),
    Setting("DEFAULT_DOCUMENT_LANGUAGE", "en", "Language for documents that name none."),
    Setting("DEFAULT_INITIATOR", "",
            "Email of the portal user who initiates packages whose request or routing profile names none."),
    # Archive.
    Setting("DELETE_AFTER_ARCHIVE", "false", "Delete the package at Connective once it is archived."),
    Setting("ARCHIVE_RETRY_DELAY_S", "30",
            "First delay (s) before archiving again when Connective answers 409 (files not ready); doubles per try."),
    Setting("ARCHIVE_MAX_ATTEMPTS", "8", "Archive tries per package that may end in 409 before it gives up."),
    # Scheduled upkeep.
    Setting("MAINTENANCE_SCHEDULE", "0 */5 * * * *", "NCRONTAB (UTC) of the maintenance timer."),
    Setting("REMINDER_FIRST_AFTER_H", "48", "Hours pending before the first reminder (fractions allowed)."),
    Setting("REMINDER_EVERY_H", "48", "Hours between reminders (fractions allowed)."),
    Setting("REMINDER_MAX_COUNT", "3", "Reminders per package at most."),
    Setting("EXPIRY_WINDOW_H", "24", "Extend packages whose expiry falls within this many hours."),
    Setting("EXPIRY_EXTEND_DAYS", "7", "Days added per extension."),
    Setting("EXPIRY_MAX_EXTENSIONS", "2", "Extensions per package at most."),
    Setting("RECONCILE_AFTER_H", "6", "Re-read packages with no callback for this many hours."),
    Setting("MAINTENANCE_RATE_SHARE", "0.3", "Largest share of the rate budget the timer may use."),
    Setting("MAINTENANCE_TIME_BUDGET_S", "240", "A run stops starting new work after this many seconds."),
    Setting("MAINTENANCE_SWEEP_EVERY_MIN", "60",
            "Minutes between Package List sweeps that find packages created at Connective whose row missed it."),
    Setting("STUCK_CREATION_AFTER_MIN", "30",
            "Minutes a row may sit unchanged in Received, or in Creating with no live attempt, before the timer "
            "sends its creation request again (then after twice as long each time, at most 5 times)."),
    Setting("ARCHIVE_STUCK_AFTER_MIN", "15",
            "Minutes a row may sit unchanged in Finished before the timer sends its archive request again "
            "(then after twice as long each time, at most 5 times)."),
    # Bulk send.
    Setting("BULK_RATE_SHARE", "0.7",
            "Largest share of the rate budget that bulk sends may spend on creating packages; the rest stays "
            "free for other packages, callbacks and archives."),
    Setting("BULK_STEP_ROWS", "100", "Recipient rows one bulk-feed step reads at most."),
    Setting("BULK_REPORT_INTERVAL_S", "30",
            "Seconds between rewrites of a bulk send's report.csv and summary.json while it runs."),
    Setting("BULK_MAX_ROWS", "50000", "Recipient rows one bulk send may have; rows past it are reported and skipped."),
    # HTTP API and webhooks.
    Setting("WEBHOOK_SIGNING_SECRET", None,
            "Comma-separated secrets that sign webhook deliveries (Standard Webhooks); each adds a v1, signature "
            "(rotation). A whsec_<base64> value is used as given, any other as its UTF-8 bytes.",
            secret=True),
    Setting("WEBHOOK_MAX_ATTEMPTS", "6", "Delivery attempts before a webhook event is dead-lettered."),
    Setting("WEBHOOK_RETRY_BASE_S", "30", "Delay before the second delivery attempt; it doubles for each further one."),
    Setting("WEBHOOK_RETRY_MAX_S", "3600", "Longest delay between two delivery attempts, in seconds."),
    Setting("WEBHOOK_ALLOW_LOOPBACK", "false", "Allow http and loopback subscriber URLs (local runs only)."),
    Setting("API_MAX_BODY_MB", "40", "Largest HTTP API request body, in MB."),
    Setting("API_LINK_EXPIRY_MIN", "15", "Minutes the document download links (SAS) of the HTTP API stay valid."),
    # Telemetry (shared.telemetry, docs/OPERATIONS.md).
    Setting("APPLICATIONINSIGHTS_CONNECTION_STRING", "",
            "Application Insights connection string; when set, traces, logs and metrics go there through "
            "OpenTelemetry. Empty: nothing is exported to Azure."),
    Setting("APPLICATIONINSIGHTS_AUTHENTICATION_STRING", "",
            "`Authorization=AAD;ClientId=<identity client id>`: telemetry is sent with that managed identity."),
    Setting("PYTHON_ENABLE_OPENTELEMETRY", "false",
            "Read by the Python worker: `true` attaches each invocation's trace context (sent by the host, "
            "host.json `telemetryMode: OpenTelemetry`) before the function runs."),
    Setting("TELEMETRY_EXPORTER", "none",
            "Local telemetry without Azure: `console` (stderr), `otlp` (OTEL_EXPORTER_OTLP_ENDPOINT, "
            "http/protobuf) or `jsonl` (files under TELEMETRY_JSONL_DIR); `none` exports nothing."),
    Setting("TELEMETRY_JSONL_DIR", "telemetry",
            "Directory of the `jsonl` exporter's files, one per process and signal (spans-<pid>.jsonl, ...)."),
)

_BY_NAME = {s.name: s for s in SETTINGS}


class MissingSetting(RuntimeError):
    """A required setting is absent."""


class Settings:
    """Typed read access to app settings (environment variables, as the Functions host provides them)."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self._env = os.environ if env is None else env

    def raw(self, name: str) -> str | None:
        if name not in _BY_NAME:
            raise KeyError(f"{name} is not a registered setting; add it to shared.config.SETTINGS")
        value = self._env.get(name)
        if is_unresolved_key_vault_reference(value):
            _report_unresolved(name)
            return _BY_NAME[name].default
        if value is None or value == "":
            return _BY_NAME[name].default
        return value

    def get(self, name: str) -> str:
        value = self.raw(name)
        if value is None:
            if is_unresolved_key_vault_reference(self._env.get(name)):
                raise MissingSetting(f"setting {name} is a Key Vault reference that could not be resolved: check that "
                                     "the secret exists and that the app's identity may read it")
            raise MissingSetting(f"setting {name} is required: {_BY_NAME[name].description}")
        return value

    def get_int(self, name: str) -> int:
        return int(self.get(name))

    def get_float(self, name: str) -> float:
        return float(self.get(name))

    def get_bool(self, name: str) -> bool:
        return self.get(name).strip().lower() in {"1", "true", "yes", "on"}

    def get_list(self, name: str) -> list[str]:
        value = self.raw(name) or ""
        return [part.strip() for part in value.split(",") if part.strip()]

    def connection(self, name: str) -> tuple[str | None, dict[str, str]]:
        """A storage connection as the Functions host reads it.

        Returns the connection string stored under `name` (local runs), or None and the
        identity-based `name__*` settings (`blobServiceUri`, `queueServiceUri`, `tableServiceUri`,
        `credential`, `clientId`) as a dict keyed by the part after `__`.
        """
        if name not in _BY_NAME:
            raise KeyError(f"{name} is not a registered setting; add it to shared.config.SETTINGS")
        value = self._env.get(name)
        if is_unresolved_key_vault_reference(value):
            _report_unresolved(name)
            value = None
        if value:
            return value, {}
        prefix = f"{name}__"
        parts = {key[len(prefix):]: val for key, val in self._env.items()
                 if key.startswith(prefix) and val and not is_unresolved_key_vault_reference(val)}
        if not parts:
            raise MissingSetting(f"setting {name} (or identity-based {name}__*) is required")
        return None, parts
