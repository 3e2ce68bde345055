"""Where and how to reach Sentinel Hub: endpoints, credentials, retries, the per-request deadline."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from sentinelhub import SHConfig

from lulc_core.errors import ProviderError
from lulc_core.providers.sentinelhub.logs import register_secret
from lulc_core.settings import DEFAULT_SH_DEADLINE_S, Settings, load_settings

ENDPOINTS: dict[str, tuple[str, str]] = {
    "cdse": ("https://sh.dataspace.copernicus.eu",
             "https://identity.dataspace.copernicus.eu/auth/realms/CDSE/protocol/openid-connect/token"),
    "sentinelhub": ("https://services.sentinel-hub.com",
                    "https://services.sentinel-hub.com/auth/realms/main/protocol/openid-connect/token"),
}
ENDPOINT_ALIASES = {"cdse": "cdse", "copernicus": "cdse", "dataspace": "cdse",
                    "sentinelhub": "sentinelhub", "sentinel-hub": "sentinelhub", "sh": "sentinelhub",
                    "commercial": "sentinelhub"}


@dataclass(frozen=True)
class SentinelHubSettings:
    """Where and how to reach Sentinel Hub. ``client_secret`` never shows in repr/str."""

    client_id: str = ""
    client_secret: str = field(default="", repr=False)
    endpoint: str = "cdse"
    base_url: str = ""
    token_url: str = ""
    max_download_attempts: int = 4
    download_sleep_time: float = 5.0
    timeout_s: float = 120.0
    #: 429 answers tolerated per request (each waits Retry-After) before RateLimitError.
    max_rate_limit_retries: int = 10
    #: wait after a 429 without Retry-After, in seconds.
    rate_limit_default_wait_s: float = 30.0
    #: seconds one request (a catalog search, one Process API request) may take in all: attempts,
    #: retry sleeps, rate-limit waits and the token request included (``LULC_SH_DEADLINE_S``).
    deadline_s: float = DEFAULT_SH_DEADLINE_S

    def __post_init__(self) -> None:
        key = ENDPOINT_ALIASES.get((self.endpoint or "cdse").strip().lower())
        if key is None:
            raise ProviderError(f"unknown Sentinel Hub endpoint {self.endpoint!r}: use 'cdse' (Copernicus Data "
                                "Space Ecosystem) or 'sentinelhub' (commercial services.sentinel-hub.com)")
        base, token = ENDPOINTS[key]
        object.__setattr__(self, "endpoint", key)
        object.__setattr__(self, "base_url", (self.base_url or base).strip().rstrip("/"))
        object.__setattr__(self, "token_url", (self.token_url or token).strip())
        object.__setattr__(self, "client_id", (self.client_id or "").strip())
        object.__setattr__(self, "client_secret", (self.client_secret or "").strip())
        if self.max_download_attempts < 1:
            raise ValueError("max_download_attempts must be at least 1")
        if not self.deadline_s > 0:
            raise ValueError("deadline_s must be positive")
        register_secret(self.client_secret)

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> "SentinelHubSettings":
        """From the project's :class:`~lulc_core.settings.Settings`; ``overrides`` go to the constructor."""
        kwargs = {"client_id": settings.sh_client_id, "client_secret": settings.sh_client_secret,
                  "endpoint": settings.sh_endpoint or "cdse", "base_url": settings.sh_base_url,
                  "token_url": settings.sh_token_url, "deadline_s": settings.sh_deadline_s}
        return cls(**{**kwargs, **overrides})

    @classmethod
    def from_env(cls, env: Mapping[str, Any] | None = None, secrets: Mapping[str, Any] | None = None,
                 **overrides: Any) -> "SentinelHubSettings":
        """SH_CLIENT_ID, SH_CLIENT_SECRET, SH_ENDPOINT, SH_BASE_URL, SH_TOKEN_URL, LULC_SH_DEADLINE_S from
        ``env`` (default ``os.environ``), then ``secrets`` (default ``.streamlit/secrets.toml``): top-level
        keys or a ``[sentinelhub]`` table (client_id, client_secret, endpoint, base_url, token_url)."""
        return cls.from_settings(load_settings(env=env, secrets=secrets), **overrides)

    @property
    def has_credentials(self) -> bool:
        return bool(self.client_id and self.client_secret)

    def to_shconfig(self) -> SHConfig:
        """A sentinelhub SHConfig built from these settings only (no config.toml, no environment)."""
        return SHConfig(use_defaults=True, sh_client_id=self.client_id, sh_client_secret=self.client_secret,
                        sh_base_url=self.base_url, sh_token_url=self.token_url,
                        max_download_attempts=self.max_download_attempts,
                        download_sleep_time=self.download_sleep_time, download_timeout_seconds=self.timeout_s,
                        max_retries=self.max_rate_limit_retries + 1, number_of_download_processes=1)
