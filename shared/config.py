"""Every app setting the code reads, declared once, as one typed pydantic-settings model.

`Settings` is the single list of setting names: each field is aliased to the exact environment
name and carries its description. `infra/` must set each one that has no default (a test checks
it), and docs/CONFIGURATION.md is generated from the fields (`python -m devtools.config_doc`). Code
reads settings only through `Settings`, never through `os.environ` directly, so the model stays complete
(the one exception, a decorator argument read while the app is indexed, is `shared.environment`'s).

Building the model validates every field at once: a bad value anywhere fails the first use of the
settings in a process with one `InvalidSettings` naming every bad setting and why, not later in the
middle of an invocation. A required setting without a default (the Connective login, the secrets,
the storage connections) may be absent in a process that never needs it: it fails with
`MissingSetting` where it is used (`require`, `storage_connection`).

Secrets are `SecretStr`: their repr and str are masked, so no log line or trace can carry one by
accident; `.get_secret_value()` is called only where the secret is used (HTTP auth, HMAC).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, HttpUrl, SecretStr, TypeAdapter
from pydantic import ValidationError as PydanticValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, EnvSettingsSource, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict
from pydantic_settings.sources.utils import parse_env_vars

from shared.environment import is_unresolved_key_vault_reference, report_unresolved


class MissingSetting(RuntimeError):
    """A required setting is absent."""


class InvalidSettings(ValueError):
    """One or more settings hold values of the wrong type or outside their range; the message names each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid app settings: " + "; ".join(problems))
        self.problems = problems


# --- value types ------------------------------------------------------------------------------------

_HTTP_URL: TypeAdapter[HttpUrl] = TypeAdapter(HttpUrl)


def http_url(value: str) -> str:
    """An absolute http(s) URL, kept as written (HttpUrl would add a trailing slash to a bare host)."""
    _HTTP_URL.validate_python(value)
    return value.strip()


def _comma_list(value: object) -> object:
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


def _one_of(*options: str) -> BeforeValidator:
    """Case-insensitive match to one of a closed set of spellings, normalised to the canonical one."""
    def normalise(value: object) -> object:
        if isinstance(value, str):
            return next((option for option in options if option.lower() == value.strip().lower()), value)
        return value
    return BeforeValidator(normalise)


HttpUrlText = Annotated[str, AfterValidator(http_url)]
# NoDecode: a comma-separated environment value, not JSON.
SecretList = Annotated[tuple[SecretStr, ...], NoDecode, BeforeValidator(_comma_list)]
RateLimiterKind = Annotated[Literal["local", "table"], _one_of("local", "table")]
BlobTriggerSource = Annotated[Literal["EventGrid", "LogsAndContainerScan"],
                              _one_of("EventGrid", "LogsAndContainerScan")]
ItsmeTargetType = Annotated[Literal["PdfA1A", "PdfA2A"], _one_of("PdfA1A", "PdfA2A")]
TelemetryExporter = Annotated[Literal["none", "console", "otlp", "jsonl"], _one_of("none", "console", "otlp", "jsonl")]


class IdentityConnection(BaseModel):
    """An identity-based storage connection: the `<name>__*` settings the Functions host reads."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    blob_service_uri: HttpUrlText | None = Field(None, alias="blobServiceUri")
    queue_service_uri: HttpUrlText | None = Field(None, alias="queueServiceUri")
    table_service_uri: HttpUrlText | None = Field(None, alias="tableServiceUri")
    credential: Annotated[Literal["managedidentity"], _one_of("managedidentity")] | None = None
    client_id: str | None = Field(None, alias="clientId")


@dataclass(frozen=True)
class StorageConnection:
    """One storage connection: a connection string (local runs) or identity-based settings (Azure)."""

    name: str
    connection_string: SecretStr | None = None
    identity: IdentityConnection | None = None

    @property
    def key(self) -> str:
        """Identifies the account, for per-process caches (the connection string itself is a secret)."""
        if self.connection_string is not None:
            return self.connection_string.get_secret_value()
        assert self.identity is not None
        return self.identity.blob_service_uri or repr(self.identity)


def _storage(value: object) -> object:
    # A plain value is a connection string; a mapping came from the `<name>__*` settings.
    if isinstance(value, str):
        return SecretStr(value)
    return value


# A connection string (`<name>`) wins over identity-based settings (`<name>__*`), as in the host.
StorageSetting = Annotated[IdentityConnection | SecretStr | None, BeforeValidator(_storage)]


def setting(name: str, default: str | None, description: str, *, secret: bool = False, **constraints: Any) -> Any:
    """One field: its environment name, its default as written in the environment, its description."""
    return Field(default, alias=name, description=description,
                 json_schema_extra={"secret": secret, "required": default is None}, **constraints)


# The mapping a `Settings(env)` reads instead of os.environ (set only while that instance is built).
_building_from: ContextVar[Mapping[str, str] | None] = ContextVar("settings_env", default=None)


class _AppEnvironment(EnvSettingsSource):
    """The environment as the app sees it: empty values and unresolved Key Vault references are unset."""

    def __init__(self, settings_cls: type[BaseSettings], env: Mapping[str, str]) -> None:
        self._env = env
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        usable: dict[str, str] = {}
        for name, value in self._env.items():
            if is_unresolved_key_vault_reference(value):
                report_unresolved(name)
            else:
                usable[name] = value
        return parse_env_vars(usable, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str)


class Settings(BaseSettings):
    """The app settings (environment variables, as the Functions host provides them), typed and validated.

    `Settings()` reads os.environ, `Settings(env)` a mapping (tests); `Settings.current()` is the
    per-process cached instance the triggers use on every invocation.
    """

    model_config = SettingsConfigDict(
        case_sensitive=True, env_ignore_empty=True, env_nested_delimiter="__", extra="ignore", frozen=True,
        validate_default=True, populate_by_name=False, hide_input_in_errors=True)

    # Storage. `DocumentStorage` is the connection name used by the bindings; in Azure it is
    # identity-based (DocumentStorage__blobServiceUri, __queueServiceUri, __tableServiceUri,
    # __credential, __clientId) and locally a connection string.
    azure_webjobs_storage: StorageSetting = setting(
        "AzureWebJobsStorage", None, "Host storage: receipts, timer status, poison queues.")
    document_storage: StorageSetting = setting(
        "DocumentStorage", None,
        "Document storage connection string (local) or the prefix of identity-based settings.")
    # Connective connection.
    connective_base_url: HttpUrlText = setting(
        "CONNECTIVE_BASE_URL", "http://127.0.0.1:7081/webportalapi/v3",
        "Full API v3 base URL, https://host[/prefix]/webportalapi/v3.")
    connective_username: str | None = setting("CONNECTIVE_USERNAME", None, "API user (Basic auth).")
    connective_password: SecretStr | None = setting(
        "CONNECTIVE_PASSWORD", None, "API password (Basic auth); a Key Vault reference in Azure.", secret=True)
    connective_connect_timeout_s: float = setting(
        "CONNECTIVE_CONNECT_TIMEOUT_S", "5", "Seconds to establish a connection.", gt=0)
    connective_read_timeout_s: float = setting(
        "CONNECTIVE_READ_TIMEOUT_S", "60", "Seconds to wait between bytes of an answer.", gt=0)
    connective_retry_max_attempts: int = setting(
        "CONNECTIVE_RETRY_MAX_ATTEMPTS", "6", "Attempts per call, the first included.", ge=1)
    connective_retry_total_s: float = setting(
        "CONNECTIVE_RETRY_TOTAL_S", "120", "Upper bound on the time one call spends retrying.", ge=0)
    connective_rate_calls: int = setting(
        "CONNECTIVE_RATE_CALLS", "100",
        "Calls allowed per window for this connection. 100 per 60 s is the Connective connector gateway's "
        "documented limit; no public source documents one on the direct REST API.", gt=0)
    connective_rate_window_s: float = setting(
        "CONNECTIVE_RATE_WINDOW_S", "60", "Length of the rate window in seconds.", gt=0)
    connective_multipart_threshold_kb: int = setting(
        "CONNECTIVE_MULTIPART_THRESHOLD_KB", "1024",
        "Documents of this size (KB) or more are uploaded as multipart/form-data, smaller ones as base64 JSON.", ge=0)
    connective_rate_limiter: RateLimiterKind = setting(
        "CONNECTIVE_RATE_LIMITER", "local",
        "`local` (one process) or `table` (shared by every instance, in Table Storage).")
    connective_rate_latency_margin_s: float = setting(
        "CONNECTIVE_RATE_LATENCY_MARGIN_S", "0.1",
        "Seconds added to the rate window for the trip from a request leaving the app to the gateway.", ge=0)
    connective_rate_lease_size: int = setting(
        "CONNECTIVE_RATE_LEASE_SIZE", "5", "Tokens the table limiter takes from the shared budget at once.", gt=0)
    connective_rate_lease_validity_s: float = setting(
        "CONNECTIVE_RATE_LEASE_VALIDITY_S", "1",
        "Seconds a leased block of tokens stays usable; unused tokens then expire.", gt=0)
    connective_rate_clock_skew_s: float = setting(
        "CONNECTIVE_RATE_CLOCK_SKEW_S", "0.05",
        "Extra seconds of clock disagreement tolerated between instances on top of the measured one.", ge=0)
    # Callbacks from Connective.
    public_base_url: HttpUrlText = setting(
        "PUBLIC_BASE_URL", "http://127.0.0.1:7071",
        "Public base URL of this function app; callback URLs are built on it.")
    callback_secrets: SecretList = setting(
        "CALLBACK_SECRETS", None,
        "Comma-separated HMAC secrets for callback tokens; the first signs, all verify (rotation).", secret=True)
    callback_rate_wait_s: float = setting(
        "CALLBACK_RATE_WAIT_S", "0.05",
        "Longest wait (s) for a rate token inside the callback; past it the status read goes to status-refresh.", ge=0)
    status_refresh_delay_s: int = setting(
        "STATUS_REFRESH_DELAY_S", "10",
        "Seconds a callback that reports no final status waits before its status read; callbacks in between "
        "share that one read.", ge=0)
    queue_rate_wait_s: float = setting(
        "QUEUE_RATE_WAIT_S", "2",
        "Longest wait (s) for a rate token in queue work; past it the message goes back with a delay.", ge=0)
    creation_lease_s: float = setting(
        "CREATION_LEASE_S", "240",
        "Seconds a creation attempt holds its package row, renewed before each Connective call; a dead worker's "
        "row is resumed once it lapses. Raised when needed to the longest call (QUEUE_RATE_WAIT_S + "
        "CONNECTIVE_RETRY_TOTAL_S + connect and read timeouts) + 15.", ge=0)
    # Intake.
    blob_trigger_source: BlobTriggerSource = setting(
        "BLOB_TRIGGER_SOURCE", "LogsAndContainerScan",
        "`EventGrid` in Azure (Flex Consumption), `LogsAndContainerScan` where the host polls.")
    intake_max_document_mb: int = setting(
        "INTAKE_MAX_DOCUMENT_MB", "30",
        "Largest document accepted, in MB (MiB: 1 MB = 1,048,576 bytes). Connective refuses documents over 30 MB, "
        "so a larger one is rejected at intake (document_too_large) before any call.", gt=0)
    itsme_target_type: ItsmeTargetType = setting(
        "ITSME_TARGET_TYPE", "PdfA2A",
        "TargetType (PdfA1A or PdfA2A) sent for the documents of a package whose signers may sign with itsme, "
        "which signs PDF/A only.")
    routing_profiles: str = setting(
        "ROUTING_PROFILES", "",
        "JSON routing profiles by inbox folder; empty means the blob signing-config/routing-profiles.json.")
    default_document_language: str = setting(
        "DEFAULT_DOCUMENT_LANGUAGE", "en", "Language for documents that name none.", min_length=1)
    default_initiator: str = setting(
        "DEFAULT_INITIATOR", "",
        "Email of the portal user who initiates packages whose request or routing profile names none.")
    # Archive.
    delete_after_archive: bool = setting(
        "DELETE_AFTER_ARCHIVE", "false", "Delete the package at Connective once it is archived.")
    archive_retry_delay_s: int = setting(
        "ARCHIVE_RETRY_DELAY_S", "30",
        "First delay (s) before archiving again when Connective answers 409 (files not ready); doubles per try.", ge=0)
    archive_max_attempts: int = setting(
        "ARCHIVE_MAX_ATTEMPTS", "8", "Archive tries per package that may end in 409 before it gives up.", ge=1)
    # Scheduled upkeep.
    maintenance_schedule: str = setting(
        "MAINTENANCE_SCHEDULE", "0 */5 * * * *", "NCRONTAB (UTC) of the maintenance timer.")
    reminder_first_after_h: float = setting(
        "REMINDER_FIRST_AFTER_H", "48", "Hours pending before the first reminder (fractions allowed).", ge=0)
    reminder_every_h: float = setting(
        "REMINDER_EVERY_H", "48", "Hours between reminders (fractions allowed).", ge=0)
    reminder_max_count: int = setting("REMINDER_MAX_COUNT", "3", "Reminders per package at most.", ge=0)
    expiry_window_h: float = setting(
        "EXPIRY_WINDOW_H", "24", "Extend packages whose expiry falls within this many hours.", ge=0)
    expiry_extend_days: float = setting("EXPIRY_EXTEND_DAYS", "7", "Days added per extension.", ge=0)
    expiry_max_extensions: int = setting("EXPIRY_MAX_EXTENSIONS", "2", "Extensions per package at most.", ge=0)
    reconcile_after_h: float = setting(
        "RECONCILE_AFTER_H", "6", "Re-read packages with no callback for this many hours.", ge=0)
    maintenance_rate_share: float = setting(
        "MAINTENANCE_RATE_SHARE", "0.3", "Largest share of the rate budget the timer may use.", ge=0, le=1)
    maintenance_time_budget_s: float = setting(
        "MAINTENANCE_TIME_BUDGET_S", "240", "A run stops starting new work after this many seconds.", ge=0)
    maintenance_sweep_every_min: float = setting(
        "MAINTENANCE_SWEEP_EVERY_MIN", "60",
        "Minutes between Package List sweeps that find packages created at Connective whose row missed it.", ge=0)
    stuck_creation_after_min: float = setting(
        "STUCK_CREATION_AFTER_MIN", "30",
        "Minutes a row may sit unchanged in Received, or in Creating with no live attempt, before the timer "
        "sends its creation request again (then after twice as long each time, at most 5 times).", ge=0)
    archive_stuck_after_min: float = setting(
        "ARCHIVE_STUCK_AFTER_MIN", "15",
        "Minutes a row may sit unchanged in Finished before the timer sends its archive request again "
        "(then after twice as long each time, at most 5 times).", ge=0)
    # Bulk send.
    bulk_rate_share: float = setting(
        "BULK_RATE_SHARE", "0.7",
        "Largest share of the rate budget that bulk sends may spend on creating packages; the rest stays "
        "free for other packages, callbacks and archives.", ge=0, le=1)
    bulk_step_rows: int = setting("BULK_STEP_ROWS", "100", "Recipient rows one bulk-feed step reads at most.", gt=0)
    bulk_report_interval_s: float = setting(
        "BULK_REPORT_INTERVAL_S", "30",
        "Seconds between rewrites of a bulk send's report.csv and summary.json while it runs.", ge=0)
    bulk_max_rows: int = setting(
        "BULK_MAX_ROWS", "50000", "Recipient rows one bulk send may have; rows past it are reported and skipped.",
        gt=0)
    # HTTP API and webhooks.
    webhook_signing_secret: SecretList = setting(
        "WEBHOOK_SIGNING_SECRET", None,
        "Comma-separated secrets that sign webhook deliveries (Standard Webhooks); each adds a v1, signature "
        "(rotation). A whsec_<base64> value is used as given, any other as its UTF-8 bytes.", secret=True)
    webhook_max_attempts: int = setting(
        "WEBHOOK_MAX_ATTEMPTS", "6", "Delivery attempts before a webhook event is dead-lettered.", ge=1)
    webhook_retry_base_s: float = setting(
        "WEBHOOK_RETRY_BASE_S", "30", "Delay before the second delivery attempt; it doubles for each further one.",
        ge=0)
    webhook_retry_max_s: float = setting(
        "WEBHOOK_RETRY_MAX_S", "3600", "Longest delay between two delivery attempts, in seconds.", ge=0)
    webhook_allow_loopback: bool = setting(
        "WEBHOOK_ALLOW_LOOPBACK", "false", "Allow http and loopback subscriber URLs (local runs only).")
    api_max_body_mb: float = setting("API_MAX_BODY_MB", "40", "Largest HTTP API request body, in MB.", gt=0)
    api_link_expiry_min: float = setting(
        "API_LINK_EXPIRY_MIN", "15", "Minutes the document download links (SAS) of the HTTP API stay valid.", gt=0)
    # Telemetry (shared.telemetry, docs/OPERATIONS.md).
    applicationinsights_connection_string: str = setting(
        "APPLICATIONINSIGHTS_CONNECTION_STRING", "",
        "Application Insights connection string; when set, traces, logs and metrics go there through "
        "OpenTelemetry. Empty: nothing is exported to Azure.")
    applicationinsights_authentication_string: str = setting(
        "APPLICATIONINSIGHTS_AUTHENTICATION_STRING", "",
        "`Authorization=AAD;ClientId=<identity client id>`: telemetry is sent with that managed identity.")
    python_enable_opentelemetry: bool = setting(
        "PYTHON_ENABLE_OPENTELEMETRY", "false",
        "Read by the Python worker: `true` attaches each invocation's trace context (sent by the host, "
        "host.json `telemetryMode: OpenTelemetry`) before the function runs.")
    telemetry_exporter: TelemetryExporter = setting(
        "TELEMETRY_EXPORTER", "none",
        "Local telemetry without Azure: `console` (stderr), `otlp` (OTEL_EXPORTER_OTLP_ENDPOINT, "
        "http/protobuf) or `jsonl` (files under TELEMETRY_JSONL_DIR); `none` exports nothing.")
    telemetry_jsonl_dir: str = setting(
        "TELEMETRY_JSONL_DIR", "telemetry",
        "Directory of the `jsonl` exporter's files, one per process and signal (spans-<pid>.jsonl, ...).",
        min_length=1)

    def __init__(self, env: Mapping[str, str] | None = None, /) -> None:
        token = _building_from.set(os.environ if env is None else env)
        try:
            super().__init__()
        except PydanticValidationError as error:
            raise InvalidSettings(_problems(error)) from None
        finally:
            _building_from.reset(token)

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Only the environment (or the mapping given to Settings(env)): no .env file, no secrets directory.
        return (_AppEnvironment(settings_cls, _building_from.get() or {}),)

    @classmethod
    def current(cls) -> Settings:
        """The settings of this process, validated once and rebuilt only when the environment changes."""
        return _current.get()

    def require[T](self, value: T | None, name: str) -> T:
        """`value` (a required setting read from these settings), or MissingSetting naming `name`."""
        if value is None or value == ():
            raise MissingSetting(f"setting {name} is required (unset, empty, or a Key Vault reference that could "
                                 f"not be resolved): {_description(name)}")
        return value

    def storage_connection(self, name: str) -> StorageConnection:
        """A storage connection as the Functions host reads it: `name` (a connection string) or `name__*`."""
        field = _FIELD_BY_NAME.get(name)
        if field is None:
            raise KeyError(f"{name} is not a declared setting; add it to shared.config.Settings")
        value = getattr(self, field)
        if isinstance(value, SecretStr):
            return StorageConnection(name, connection_string=value)
        if isinstance(value, IdentityConnection) and value.model_fields_set:
            return StorageConnection(name, identity=value)
        raise MissingSetting(f"setting {name} (or identity-based {name}__*) is required: {_description(name)}")


_UNION_MEMBER_TAGS = {IdentityConnection.__name__}


def _problems(error: PydanticValidationError) -> list[str]:
    problems: list[str] = []
    for item in error.errors(include_url=False):
        if item["type"] == "string_type" and isinstance(item.get("input"), dict):
            continue  # a storage connection given as `<name>__*`: not the connection-string branch's error
        # Union members appear in the location by type name; the setting's name is what an operator sets.
        location = "__".join(str(part) for part in item["loc"]
                             if isinstance(part, str) and part not in _UNION_MEMBER_TAGS)
        name = location.split("__")[0]
        if name in _DECLARED:  # a default is reported under the attribute's name
            location = location.replace(name, _DECLARED[name].name, 1)
            name = _DECLARED[name].name
        shown = ""
        if not _declared_secret(name) and "input" in item and isinstance(item["input"], str):
            shown = f" ({item['input']!r})"
        problems.append(f"{location}: {item['msg'].lower()}{shown}")
    return problems


# --- the declared list (docs, infra tests) ------------------------------------------------------------

@dataclass(frozen=True)
class Setting:
    """One declared setting, as docs and infra checks see it (derived from a field of Settings)."""

    name: str
    default: str | None
    description: str
    secret: bool = False


def _declared(fields: Mapping[str, FieldInfo]) -> Iterator[tuple[str, Setting]]:
    for attribute, info in fields.items():
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        assert info.alias is not None and info.description is not None
        yield attribute, Setting(info.alias, info.default, info.description, secret=bool(extra.get("secret")))


_DECLARED = dict(_declared(Settings.model_fields))
SETTINGS: tuple[Setting, ...] = tuple(_DECLARED.values())
_FIELD_BY_NAME = {setting.name: attribute for attribute, setting in _DECLARED.items()}
_BY_NAME = {setting.name: setting for setting in SETTINGS}


def _description(name: str) -> str:
    return _BY_NAME[name].description if name in _BY_NAME else ""


def _declared_secret(name: str) -> bool:
    return name in _BY_NAME and _BY_NAME[name].secret


class _CurrentSettings:
    """One Settings per process, rebuilt only when the environment changed since the last build.

    Comparing the environment (a dict compare) costs microseconds; building and validating every field
    costs far more, and settings are read on every invocation.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cached: tuple[dict[str, str], Settings] | None = None

    def get(self) -> Settings:
        environment = dict(os.environ)
        cached = self._cached
        if cached is not None and cached[0] == environment:
            return cached[1]
        with self._lock:
            built = Settings(environment)
            self._cached = (environment, built)
            return built


_current = _CurrentSettings()
