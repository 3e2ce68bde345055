"""Secrets out of logs: :func:`redact` and the log filter :func:`install_log_redaction` attaches."""

from __future__ import annotations

import logging
import re

#: Loggers that may print token request bodies or bearer tokens (requests-oauthlib logs bodies at DEBUG).
REDACTED_LOGGERS = ("requests_oauthlib.oauth2_session", "requests_oauthlib", "oauthlib",
                    "sentinelhub.download.session", "sentinelhub.download.sentinelhub_client",
                    "sentinelhub.download.handlers")

_SECRETS: set[str] = set()
_SECRET_PATTERNS = (
    re.compile(r"(client_secret=)[^&\s'\"]+"),
    re.compile(r"(['\"]?access_token['\"]?\s*[:=]\s*['\"]?)[\w\-.~+/]+"),
    re.compile(r"(Bearer\s+)[\w\-.~+/]+=*"),
)


def register_secret(secret: str) -> None:
    """Mask ``secret`` wherever :func:`redact` runs from now on."""
    if secret:
        _SECRETS.add(secret)


def redact(text: str) -> str:
    """``text`` with every registered client secret, token and client_secret=... masked."""
    for s in sorted(_SECRETS, key=len, reverse=True):
        if len(s) >= 6:  # shorter ones would mangle ordinary words; the patterns below still apply
            text = text.replace(s, "***")
    for pat in _SECRET_PATTERNS:
        text = pat.sub(r"\1***", text)
    return text


class RedactingFilter(logging.Filter):
    """Rewrites a record's message with :func:`redact` (never drops a record)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            msg = record.getMessage()
        except Exception:  # a malformed record: leave it to logging's own error handling
            return True
        clean = redact(msg)
        if clean != msg:
            record.msg, record.args = clean, ()
        return True


_FILTER = RedactingFilter()


def install_log_redaction() -> None:
    """Attach the redacting filter to the HTTP and OAuth loggers (idempotent).

    Called by :class:`SentinelHubProvider` and the dashboard's start, never on import.
    """
    for name in REDACTED_LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)


def log_redaction_installed() -> bool:
    return all(_FILTER in logging.getLogger(name).filters for name in REDACTED_LOGGERS)
