"""Client failures as one-line :mod:`lulc_core.errors` that say what to do: :func:`client_errors`.

The sentinelhub client, requests and oauthlib raise their own exceptions (after the client's
retries); :func:`client_errors` is the one place that turns them into CredentialsError,
QuotaError, RateLimitError or ProviderError, with secrets redacted and no multi-line text.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator
from urllib.parse import urlsplit

import requests
from oauthlib.oauth2.rfc6749.errors import InsecureTransportError, MissingTokenError, OAuth2Error
from sentinelhub.exceptions import DownloadFailedException, OutOfRequestsException

from lulc_core.errors import CredentialsError, ProviderError, QuotaError, RateLimitError
from lulc_core.providers.sentinelhub.deadline import DeadlinePassed
from lulc_core.providers.sentinelhub.logs import redact
from lulc_core.providers.sentinelhub.settings import SentinelHubSettings

_QUOTA_WORDS = ("quota", "processing unit", "limit", "exceeded", "exhausted", "insufficient")


@contextlib.contextmanager
def client_errors(what: str, settings: SentinelHubSettings, collection: str,
                  on_refused: Callable[[], None] | None = None) -> Iterator[None]:
    """Map any failure of the client inside the block onto a lulc_core error about ``what``
    (e.g. "catalog search"); ``on_refused`` runs when the credentials were refused."""
    try:
        yield
    except ProviderError:
        raise
    except Exception as exc:
        err = map_error(exc, what, settings, collection)
        if isinstance(err, CredentialsError) and on_refused is not None:
            on_refused()
        raise err from _cause(exc)


def insecure_url_message(name: str, url: str, endpoint: str) -> str:
    """The message for a plain-http (or other non-https) service address."""
    return _one_line(f"{name} is {url}, not an https:// address: Sentinel Hub and the Copernicus Data Space serve "
                     f"https only, and credentials and tokens are never sent over plain http; write {name} with "
                     f"https:// (or unset it for the {endpoint} default)")


def _cause(exc: BaseException) -> BaseException | None:
    """The exception to chain: none for token failures (their context could hold the request body)."""
    if isinstance(exc, OAuth2Error):
        return None
    return exc


def _server_message(response: requests.Response) -> str:
    try:
        obj = response.json()
    except ValueError:
        text = (response.text or "").strip()
        return text.splitlines()[0][:200] if text else response.reason or ""
    if isinstance(obj, dict):
        err = obj.get("error", obj)
        if isinstance(err, dict):
            return str(err.get("message") or err.get("error_description") or err.get("error") or err)[:200]
        desc = obj.get("error_description")
        return f"{err}: {desc}" if desc else str(err)[:200]
    return str(obj)[:200]


def _one_line(text: str) -> str:
    return redact(" ".join(str(text).split()))


def map_error(exc: BaseException, what: str, s: SentinelHubSettings, collection: str) -> ProviderError:
    host = urlsplit(s.base_url).netloc or s.base_url
    check = f"check SH_CLIENT_ID / SH_CLIENT_SECRET and the endpoint ({s.endpoint}, {s.base_url})"
    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, DeadlinePassed):
        return ProviderError(_one_line(f"Sentinel Hub {what} did not finish within {exc.scope} {exc.seconds:g} s deadline "
                                       f"({exc.reason}); try again later or with a smaller area, or allow more time "
                                       "with LULC_SH_DEADLINE_S"))
    if isinstance(exc, InsecureTransportError):
        return ProviderError(insecure_url_message("SH_TOKEN_URL", s.token_url, s.endpoint))
    if isinstance(exc, MissingTokenError):
        return ProviderError(_one_line(f"the Sentinel Hub token endpoint {s.token_url} sent no access token; check "
                                       "SH_TOKEN_URL and the endpoint"))
    if isinstance(exc, OAuth2Error):
        code = getattr(exc, "error", "") or type(exc).__name__
        return CredentialsError(_one_line(f"Sentinel Hub refused the credentials ({code}) at the token endpoint "
                                          f"{s.token_url}: {check}"))
    if isinstance(exc, OutOfRequestsException):
        return RateLimitError(_one_line(f"Sentinel Hub is still rate limiting the {what} (HTTP 429) after "
                                        f"{s.max_rate_limit_retries} retries; wait a minute and try again (free "
                                        "accounts get 300 requests and 300 processing units a minute)"))
    req_exc = exc.request_exception if isinstance(exc, DownloadFailedException) else exc
    attempts = f"{s.max_download_attempts} attempt{'s' if s.max_download_attempts != 1 else ''}"
    if isinstance(req_exc, requests.HTTPError) and req_exc.response is not None:
        r = req_exc.response
        status, msg = r.status_code, _server_message(r)
        url = r.url or (r.request.url if r.request is not None else "") or ""
        if url.split("?")[0].rstrip("/") == s.token_url.rstrip("/"):
            if status in (400, 401, 403):
                return CredentialsError(_one_line(f"Sentinel Hub refused the credentials (HTTP {status}: {msg}) at "
                                                  f"the token endpoint {s.token_url}: {check}"))
            if status == 429:
                return RateLimitError(_one_line("the Sentinel Hub token endpoint is rate limiting (HTTP 429); wait "
                                                "a minute and try again"))
            return ProviderError(_one_line(f"the Sentinel Hub token endpoint {s.token_url} failed with HTTP {status} "
                                           f"after {attempts}: {msg}"))
        if status == 401:
            return CredentialsError(_one_line(f"Sentinel Hub refused the credentials (HTTP 401 on the {what}: "
                                              f"{msg}): {check}"))
        if status == 403:
            if any(w in msg.lower() for w in _QUOTA_WORDS):
                return QuotaError(_one_line(f"Sentinel Hub quota exhausted (HTTP 403 on the {what}: {msg}); free "
                                            "accounts get 10,000 processing units and 10,000 requests a month: wait "
                                            "for the reset, use cached results or a smaller area"))
            return CredentialsError(_one_line(f"Sentinel Hub denied access (HTTP 403, no permission for the {what} "
                                              f"on {collection}: {msg}): {check}"))
        if status == 429:
            return RateLimitError(_one_line(f"Sentinel Hub is still rate limiting the {what} (HTTP 429: {msg}); "
                                            "wait a minute and try again"))
        if status >= 500:
            return ProviderError(_one_line(f"Sentinel Hub failed the {what} with HTTP {status} after {attempts} "
                                           f"({msg}); the service may be down, try again later"))
        return ProviderError(_one_line(f"Sentinel Hub rejected the {what} (HTTP {status}): {msg}"))
    text = str(req_exc)
    if isinstance(req_exc, requests.Timeout) or "timed out" in text.lower():
        return ProviderError(_one_line(f"Sentinel Hub {what} timed out after {s.timeout_s:g} s ({attempts}) at "
                                       f"{host}; the service may be busy: try again later"))
    if isinstance(req_exc, requests.exceptions.ChunkedEncodingError):
        return ProviderError(_one_line(f"the connection to Sentinel Hub broke mid-response during the {what} "
                                       f"({attempts}): incomplete download; try again"))
    if isinstance(req_exc, requests.exceptions.SSLError):
        return ProviderError(_one_line(f"TLS/certificate error talking to Sentinel Hub at {host} during the "
                                       f"{what}: {_short(text)}"))
    if isinstance(req_exc, requests.ConnectionError):
        return ProviderError(_one_line(f"could not connect to Sentinel Hub at {host} during the {what} "
                                       f"({attempts}): {_short(text)}; check the network and SH_BASE_URL"))
    if isinstance(exc, ValueError) and "sh_client_id" in text:
        return CredentialsError("no Sentinel Hub credentials: set SH_CLIENT_ID and SH_CLIENT_SECRET")
    return ProviderError(_one_line(f"Sentinel Hub {what} failed: {type(exc).__name__}: {_short(str(exc))}"))


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text[:200] + ("..." if len(text) > 200 else "")
