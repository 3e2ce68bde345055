"""The project's settings, read when asked for (never frozen at import): environment, then Streamlit secrets.

Every setting is looked up by its environment name (``LULC_CACHE_DIR``, ``SH_CLIENT_ID``...):
first in the environment, then as a top-level key of the Streamlit secrets, and for the
Sentinel Hub keys also in a ``[sentinelhub]`` table of the secrets (``client_id``,
``client_secret``, ``endpoint``, ``base_url``, ``token_url``, ``deadline_s``). The secrets are
the mapping a caller passes (the dashboard passes ``st.secrets``) or else
``.streamlit/secrets.toml`` in the working folder and in the home folder (the working folder's
wins), read with :mod:`tomllib`: the core never imports Streamlit. Numbers are checked when
their property is read, so a bad value fails with a message where it is used.

Two switches are read from the environment only: ``LULC_DEBUG`` (:func:`debug_enabled`) and
``OAUTHLIB_INSECURE_TRANSPORT`` (:func:`insecure_transport_allowed`, which oauthlib itself reads there).
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from lulc_core.errors import SettingsError

DEFAULT_CACHE_MAX_MB = 2048.0
#: Processing units one dashboard session may spend: about six two-date analyses of 100 km2
#: (about 40 PU each with 13 bands + the cloud mask)
DEFAULT_PU_PER_SESSION = 250.0
#: Processing units the whole dashboard may spend per UTC day: a tenth of the CDSE free tier's
#: 10,000 a month
DEFAULT_PU_PER_DAY = 1000.0
#: Seconds one Sentinel Hub request (a catalog search, one Process API request) may take in all,
#: retries and rate-limit waits included.
DEFAULT_SH_DEADLINE_S = 120.0
SECRETS_TABLE = "sentinelhub"
SECRETS_FILES = (Path(".streamlit") / "secrets.toml", Path.home() / ".streamlit" / "secrets.toml")


def default_cache_dir() -> Path:
    return Path.home() / ".cache" / "lulc-change-explorer"


@dataclass(frozen=True)
class Settings:
    """Raw setting values as found (strings, "" when unset); typed by the properties."""

    cache_dir_raw: str = ""
    cache_max_mb_raw: str = ""
    basemap: str = "auto"
    sh_client_id: str = ""
    sh_client_secret: str = field(default="", repr=False)
    sh_endpoint: str = ""
    sh_base_url: str = ""
    sh_token_url: str = ""
    sh_deadline_raw: str = ""
    weights_raw: str = ""
    pu_per_session_raw: str = ""
    pu_per_day_raw: str = ""
    max_analyses_raw: str = ""

    @property
    def cache_dir(self) -> Path:
        """``LULC_CACHE_DIR``, else ``~/.cache/lulc-change-explorer``."""
        return Path(self.cache_dir_raw).expanduser() if self.cache_dir_raw else default_cache_dir()

    @property
    def weights_path(self) -> Path | None:
        """``LULC_WEIGHTS``: a weights file the per-window classifier runs instead of the shipped one
        (None when unset; :func:`lulc_core.model.weights.default_weights_path` resolves it)."""
        return Path(self.weights_raw).expanduser() if self.weights_raw else None

    @property
    def cache_max_bytes(self) -> int:
        """``LULC_CACHE_MAX_MB`` (megabytes, default 2048) in bytes."""
        mb = _positive_number("LULC_CACHE_MAX_MB", self.cache_max_mb_raw, DEFAULT_CACHE_MAX_MB, "megabytes")
        return int(mb * 2**20)

    @property
    def sh_deadline_s(self) -> float:
        """``LULC_SH_DEADLINE_S``: seconds one Sentinel Hub request may take in all, and a whole fetch per
        Process API part (default 120)."""
        return _positive_number("LULC_SH_DEADLINE_S", self.sh_deadline_raw, DEFAULT_SH_DEADLINE_S, "seconds")

    @property
    def pu_per_session(self) -> float | None:
        """``LULC_PU_PER_SESSION``: processing units one dashboard session may spend (default
        250; ``off`` for no limit)."""
        return _optional_limit("LULC_PU_PER_SESSION", self.pu_per_session_raw, DEFAULT_PU_PER_SESSION)

    @property
    def pu_per_day(self) -> float | None:
        """``LULC_PU_PER_DAY``: processing units the dashboard may spend per UTC day, all sessions
        together (default 1000, a tenth of the CDSE free tier's month; ``off`` for no limit)."""
        return _optional_limit("LULC_PU_PER_DAY", self.pu_per_day_raw, DEFAULT_PU_PER_DAY)

    @property
    def max_analyses(self) -> int:
        """``LULC_MAX_ANALYSES``: analyses the dashboard runs at once, the others wait in order
        (default: one per two cores, at least one)."""
        if not self.max_analyses_raw:
            return max(1, (os.cpu_count() or 2) // 2)
        n = _positive_number("LULC_MAX_ANALYSES", self.max_analyses_raw, 1, "analyses")
        if n != int(n):
            raise SettingsError(f"LULC_MAX_ANALYSES must be a whole number, got {self.max_analyses_raw!r}")
        return int(n)

    @property
    def has_sh_credentials(self) -> bool:
        return bool(self.sh_client_id and self.sh_client_secret)


def load_settings(env: Mapping[str, Any] | None = None, secrets: Mapping[str, Any] | None = None) -> Settings:
    """The settings as they are now: ``env`` (default ``os.environ``) first, then ``secrets``
    (default: the ``.streamlit/secrets.toml`` files), flat keys or the ``[sentinelhub]`` table."""
    env = os.environ if env is None else env
    secrets = read_secrets_files() if secrets is None else secrets
    table = _get(secrets, SECRETS_TABLE) or _get(secrets, SECRETS_TABLE.upper()) or {}

    def pick(key: str, table_key: str | None = None) -> str:
        sources = [(env, key), (secrets, key)]
        if table_key:
            sources += [(table, table_key), (table, key)]
        for source, name in sources:
            value = _get(source, name)
            if value is not None and str(value).strip():
                return str(value).strip()
        return ""

    return Settings(cache_dir_raw=pick("LULC_CACHE_DIR"), cache_max_mb_raw=pick("LULC_CACHE_MAX_MB"),
                    basemap=pick("LULC_BASEMAP").lower() or "auto",
                    sh_client_id=pick("SH_CLIENT_ID", "client_id"),
                    sh_client_secret=pick("SH_CLIENT_SECRET", "client_secret"),
                    sh_endpoint=pick("SH_ENDPOINT", "endpoint"), sh_base_url=pick("SH_BASE_URL", "base_url"),
                    sh_token_url=pick("SH_TOKEN_URL", "token_url"),
                    sh_deadline_raw=pick("LULC_SH_DEADLINE_S", "deadline_s"), weights_raw=pick("LULC_WEIGHTS"),
                    pu_per_session_raw=pick("LULC_PU_PER_SESSION"), pu_per_day_raw=pick("LULC_PU_PER_DAY"),
                    max_analyses_raw=pick("LULC_MAX_ANALYSES"))


def debug_enabled(env: Mapping[str, Any] | None = None) -> bool:
    """``LULC_DEBUG`` (environment only): the CLI shows tracebacks instead of one-line errors."""
    return bool(str((os.environ if env is None else env).get("LULC_DEBUG", "")).strip())


def insecure_transport_allowed(env: Mapping[str, Any] | None = None) -> bool:
    """``OAUTHLIB_INSECURE_TRANSPORT`` (environment only, where oauthlib itself reads it): plain-http
    Sentinel Hub addresses are allowed (a local test server); otherwise they are refused."""
    return bool(str((os.environ if env is None else env).get("OAUTHLIB_INSECURE_TRANSPORT", "")).strip())


def read_secrets_files(paths: tuple[Path, ...] = SECRETS_FILES) -> dict[str, Any]:
    """The Streamlit secrets files merged (earlier paths win), {} when there are none.

    An unreadable file is a LulcError naming it: silently ignoring it would hide credentials.
    """
    merged: dict[str, Any] = {}
    for path in reversed(paths):
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            continue
        except (OSError, UnicodeDecodeError) as exc:
            raise SettingsError(f"cannot read the secrets file {path}: {exc}; fix or remove it") from None
        try:
            merged.update(tomllib.loads(text))
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"the secrets file {path} is not valid TOML ({exc}); fix or remove it") from None
    return merged


def _positive_number(name: str, raw: str, default: float, unit: str) -> float:
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number of {unit}, got {raw!r}; unset it for the default "
                        f"({default:g})") from None
    if not value > 0:
        raise SettingsError(f"{name} must be positive, got {raw!r}; unset it for the default ({default:g})")
    return value


def _optional_limit(name: str, raw: str, default: float) -> float | None:
    """A positive limit, None for ``off`` / ``none`` (no limit), ``default`` when unset."""
    if raw.strip().lower() in ("off", "none", "unlimited"):
        return None
    return _positive_number(name, raw, default, "processing units (or off)")


def _get(source: Any, key: str) -> Any:
    """``source[key]`` for dicts and dict-likes (Streamlit's secrets), None when absent or unreadable."""
    try:
        return source.get(key) if hasattr(source, "get") else source[key]
    except Exception:  # Streamlit's secrets raise their own error when no secrets file exists
        return None
