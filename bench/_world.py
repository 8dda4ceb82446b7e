"""The end-to-end benchmarks' world: LocalWorld on ports of its own, the sandbox's admin API, and an auditor.

Every end-to-end benchmark and the chaos run start the same three processes (Azurite with on-disk
data, the sandbox, the local host); they differ only in the sandbox's knobs and a few app settings.
"""

from __future__ import annotations

import secrets
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import requests

from devtools.ports import free_port
from devtools.world import LocalWorld
from shared.connective import ConnectiveClient, ConnectiveConfig, LocalRateLimiter, RetryConfig

# A second sandbox user with a throttle of its own: reading the package list to check the outcome
# must not take calls from the app's budget (the sandbox shows every package to every user).
AUDITOR_USER = "auditor"
# Settings that make a local run quick to react without changing what it does.
FAST_SETTINGS = {
    "STATUS_REFRESH_DELAY_S": "2",
    "ARCHIVE_RETRY_DELAY_S": "2",
    "DEFAULT_INITIATOR": "initiator@example.com",
}


@dataclass
class BenchWorld:
    """A LocalWorld on free ports, auto-signing after 1 s, plus an auditor user in the sandbox."""

    workers: int = 1
    sandbox_knobs: list[str] = field(default_factory=list)
    settings: dict[str, str] = field(default_factory=dict)
    echo: bool = False
    auditor_password: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    world: LocalWorld = field(init=False)

    def __post_init__(self) -> None:
        self.world = LocalWorld(
            workers=self.workers, settings_file=None, echo=self.echo,
            host_port=free_port(), sandbox_port=free_port(), azurite_ports=(free_port(), free_port(), free_port()),
            sandbox_args=["--auto-sign", "--auto-sign-delay", "1",
                          "--user", f"{AUDITOR_USER}:{self.auditor_password}", *self.sandbox_knobs],
            extra_settings={**FAST_SETTINGS, **self.settings},
        )

    @property
    def connection_string(self) -> str:
        return self.world.storage_connection_string

    @property
    def admin_url(self) -> str:
        return f"{self.world.sandbox_root_url}/_sandbox"

    # --- the sandbox's admin API: never throttled, never faulted ----------------------------------

    def stats(self, times: bool = False) -> dict[str, Any]:
        """The sandbox's counters; `times` adds each user's acceptance times (`accepted_times_by_user`)."""
        response = requests.get(f"{self.admin_url}/stats", params={"times": "1"} if times else None, timeout=30)
        response.raise_for_status()
        return dict(response.json())

    def configure(self, **knobs: Any) -> dict[str, Any]:
        response = requests.post(f"{self.admin_url}/config", json=knobs, timeout=30)
        response.raise_for_status()
        return dict(response.json())

    def auditor(self) -> ConnectiveClient:
        config = ConnectiveConfig(self.world.sandbox_url, AUDITOR_USER, self.auditor_password,
                                  read_timeout_s=30, retry=RetryConfig(max_attempts=6, total_s=120))
        return ConnectiveClient(config, LocalRateLimiter(config.rate_calls, config.rate_window_s))

    def packages_by_reference(self) -> Counter[str]:
        """How many Connective packages carry each ExternalPackageReference, from Get Package List."""
        return Counter(item.external_package_reference or ""
                       for item in self.auditor().iter_package_list(page_size=100))

    def __enter__(self) -> BenchWorld:
        self.world.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.world.stop()
