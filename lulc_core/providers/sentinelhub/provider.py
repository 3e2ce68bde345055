"""Sentinel Hub (Copernicus Data Space Ecosystem or the commercial service) through ``sentinelhub``.

Search goes through the Catalog API (one STAC search per date window, paginated by the client),
fetch through the Process API: one request per AOI and date window on the AOI's 10 m UTM patch
grid, split into sub-requests of at most 2500 px a side (the service's limit) and mosaicked
back. The evalscript asks for the 13 Level-1C bands in EuroSAT order (B8A last) as DN in
UINT16, plus ``dataMask`` and ``CLM`` (s2cloudless) in a second UINT8 output, so the response is
a tar of two GeoTIFFs. Processing units are read from each response's
``x-processingunits-spent`` header.

When no acquisition is chosen and the Catalog finds acquisitions on more than one date in the
window, the fetch is a per-pixel composite instead of a least-cloudy mosaic: still one Process
request per AOI tile, with ``mosaicking: "ORBIT"`` and :func:`composite_evalscript`, which returns
per pixel and band the lower median of the samples that are clear (dataMask 1 and CLM 0), or,
where no sample is clear, the valid sample of the least-cloudy orbit with the cloud flag set.
The service charges such multi-temporal requests per data sample (one per orbit), so they cost
about as many times a single request as there are dates; the units spent are summed into
``Scene.processing_units`` as always. A window with one acquisition date is fetched as before.

Credentials never leave :class:`SentinelHubSettings` except towards the token endpoint: the
secret is not in reprs, cache keys, error messages or (through a redacting log filter on
requests-oauthlib, which logs token request bodies at DEBUG) in logs. Retries (5xx, connection
errors, timeouts) and 429 back-off honouring ``Retry-After`` (milliseconds) are done by the
sentinelhub client; what is left after them is mapped onto :mod:`lulc_core.errors`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import logging
import re
import tarfile
import threading
from dataclasses import dataclass, field
from typing import Any, Mapping
from urllib.parse import urlsplit

import numpy as np
import requests
import tifffile
from oauthlib.oauth2.rfc6749.errors import MissingTokenError, OAuth2Error
from sentinelhub import (CRS, BBox, DataCollection, Geometry, MimeType, MosaickingOrder, ResamplingType,
                         SentinelHubCatalog, SentinelHubDownloadClient, SentinelHubRequest, SentinelHubSession,
                         SHConfig)
from sentinelhub.download.models import DownloadResponse
from sentinelhub.exceptions import DownloadFailedException, OutOfRequestsException

from lulc_core.aoi import AOI, PatchGrid
from lulc_core.bands import EUROSAT_BAND_ORDER
from lulc_core.errors import (CredentialsError, NoImageryError, ProviderError, QuotaError, RateLimitError)
from lulc_core.providers.base import ProgressFn, acquisition_parts
from lulc_core.scene import COLLECTIONS, L1C, L2A, Acquisition, DateWindow, Scene

log = logging.getLogger(__name__)

#: Bump when the evalscript or the decoding changes what pixels a request gives (part of cache keys).
EVALSCRIPT_VERSION = 1
#: Bump when :func:`composite_evalscript` changes its pixels (part of a window fetch's cache key).
COMPOSITE_VERSION = 1
#: The name of the per-pixel reducer in the composite evalscript (the local fake recognises it).
COMPOSITE_REDUCER = "clearMedian"
#: The Process API's largest output side in pixels.
MAX_PX = 2500

ENDPOINTS: dict[str, tuple[str, str]] = {
    "cdse": ("https://sh.dataspace.copernicus.eu",
             "https://identity.dataspace.copernicus.eu/auth/realms/CDSE/protocol/openid-connect/token"),
    "sentinelhub": ("https://services.sentinel-hub.com",
                    "https://services.sentinel-hub.com/auth/realms/main/protocol/openid-connect/token"),
}
_ENDPOINT_ALIASES = {"cdse": "cdse", "copernicus": "cdse", "dataspace": "cdse",
                     "sentinelhub": "sentinelhub", "sentinel-hub": "sentinelhub", "sh": "sentinelhub",
                     "commercial": "sentinelhub"}
_QUOTA_WORDS = ("quota", "processing unit", "limit", "exceeded", "exhausted", "insufficient")


# -- secrets out of logs ---------------------------------------------------------------------------
_SECRETS: set[str] = set()
_SECRET_PATTERNS = (
    re.compile(r"(client_secret=)[^&\s'\"]+"),
    re.compile(r"(['\"]?access_token['\"]?\s*[:=]\s*['\"]?)[\w\-.~+/]+"),
    re.compile(r"(Bearer\s+)[\w\-.~+/]+=*"),
)


def redact(text: str) -> str:
    """``text`` with every registered client secret, token and client_secret=... masked."""
    for s in sorted(_SECRETS, key=len, reverse=True):
        if len(s) >= 6:  # shorter ones would mangle ordinary words; the patterns below still apply
            text = text.replace(s, "***")
    for pat in _SECRET_PATTERNS:
        text = pat.sub(r"\1***", text)
    return text


class _RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            msg = record.getMessage()
        except Exception:  # a malformed record: leave it to logging's own error handling
            return True
        clean = redact(msg)
        if clean != msg:
            record.msg, record.args = clean, ()
        return True


_FILTER = _RedactingFilter()
for _name in ("requests_oauthlib.oauth2_session", "requests_oauthlib", "oauthlib", "sentinelhub.download.session",
              "sentinelhub.download.sentinelhub_client", "sentinelhub.download.handlers"):
    _lg = logging.getLogger(_name)
    if _FILTER not in _lg.filters:
        _lg.addFilter(_FILTER)


# -- settings ------------------------------------------------------------------------------------------
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

    def __post_init__(self) -> None:
        key = _ENDPOINT_ALIASES.get((self.endpoint or "cdse").strip().lower())
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
        if self.client_secret:
            _SECRETS.add(self.client_secret)

    @classmethod
    def from_env(cls, env: Mapping[str, Any] | None = None, secrets: Mapping[str, Any] | None = None,
                 **overrides: Any) -> "SentinelHubSettings":
        """Settings from SH_CLIENT_ID, SH_CLIENT_SECRET, SH_ENDPOINT, SH_BASE_URL, SH_TOKEN_URL.

        ``secrets`` (e.g. ``st.secrets``) wins over ``env`` (default ``os.environ``); it may hold
        the same keys at top level or a ``[sentinelhub]`` table with client_id, client_secret,
        endpoint, base_url, token_url. ``overrides`` are passed to the constructor (timeouts...).
        """
        import os

        env = os.environ if env is None else env
        secrets = secrets or {}
        table = _get(secrets, "sentinelhub") or _get(secrets, "SENTINELHUB") or {}

        def pick(key: str) -> str:
            short = key[3:].lower()  # SH_CLIENT_ID -> client_id
            for source, name in ((secrets, key), (table, short), (table, key), (env, key)):
                value = _get(source, name)
                if value is not None and str(value).strip():
                    return str(value).strip()
            return ""

        kwargs = {"client_id": pick("SH_CLIENT_ID"), "client_secret": pick("SH_CLIENT_SECRET"),
                  "endpoint": pick("SH_ENDPOINT") or "cdse", "base_url": pick("SH_BASE_URL"),
                  "token_url": pick("SH_TOKEN_URL")}
        return cls(**{**kwargs, **overrides})

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


def _get(source: Any, key: str) -> Any:
    try:
        return source.get(key) if hasattr(source, "get") else source[key]
    except (KeyError, AttributeError, TypeError):
        return None
    except Exception:  # e.g. Streamlit's secrets raise their own error when no secrets file exists
        return None


# -- evalscript -------------------------------------------------------------------------------------
def evalscript(collection: str = L1C) -> str:
    """13 bands in EuroSAT order as DN (UINT16) in "default"; dataMask and CLM (UINT8) in "masks".

    Level-2A has no B10 (cirrus): that slot is returned as 0.
    """
    inputs = [b for b in EUROSAT_BAND_ORDER if not (collection == L2A and b == "B10")]
    values = ", ".join("0" if b not in inputs else f"s.{b}" for b in EUROSAT_BAND_ORDER)
    band_list = ", ".join(f'"{b}"' for b in inputs + ["dataMask", "CLM"])
    return f"""//VERSION=3
function setup() {{
  return {{
    input: [{{bands: [{band_list}], units: "DN"}}],
    output: [
      {{id: "default", bands: 13, sampleType: "UINT16"}},
      {{id: "masks", bands: 2, sampleType: "UINT8"}}
    ]
  }};
}}

function evaluatePixel(s) {{
  return {{
    default: [{values}],
    masks: [s.dataMask, s.CLM]
  }};
}}
"""


def composite_evalscript(collection: str = L1C) -> str:
    """ORBIT mosaicking: per pixel and band the median of the clear samples of every orbit.

    Same outputs as :func:`evalscript` (13 bands as DN in "default", dataMask and cloud in
    "masks"). A sample is clear where dataMask is 1 and CLM is 0. The median of an even count is
    the lower one (an observed value; with two samples, the darker, less hazy one). Where no
    sample is clear, the valid sample of the orbit with the least tile cloud cover (earliest on a
    tie) is returned with the cloud flag 1; where no sample has data, zeros and dataMask 0.
    """
    inputs = [b for b in EUROSAT_BAND_ORDER if not (collection == L2A and b == "B10")]
    values = ", ".join("0" if b not in inputs else f"px.{b}" for b in EUROSAT_BAND_ORDER)
    band_list = ", ".join(f'"{b}"' for b in inputs + ["dataMask", "CLM"])
    bands = ", ".join(f'"{b}"' for b in inputs)
    return f"""//VERSION=3
var BANDS = [{bands}];

function setup() {{
  return {{
    input: [{{bands: [{band_list}], units: "DN"}}],
    output: [
      {{id: "default", bands: 13, sampleType: "UINT16"}},
      {{id: "masks", bands: 2, sampleType: "UINT8"}}
    ],
    mosaicking: "ORBIT"
  }};
}}

function orbitCloud(orbit) {{
  var cc = Infinity;
  for (var t = 0; t < orbit.tiles.length; t++) {{
    cc = Math.min(cc, orbit.tiles[t].cloudCoverage);
  }}
  return cc;
}}

function lowerMedian(values) {{
  values.sort(function (a, b) {{ return a - b; }});
  return values[(values.length - 1) >> 1];
}}

function {COMPOSITE_REDUCER}(samples, scenes) {{
  var clear = [], best = null, bestCC = Infinity, bestDate = "";
  for (var i = 0; i < samples.length; i++) {{
    var s = samples[i];
    if (s.dataMask !== 1) {{ continue; }}
    if (s.CLM === 0) {{ clear.push(s); }}
    var orbit = scenes.orbits[i], cc = orbitCloud(orbit);
    if (cc < bestCC || (cc === bestCC && orbit.dateFrom < bestDate)) {{
      best = s; bestCC = cc; bestDate = orbit.dateFrom;
    }}
  }}
  var px = {{dataMask: best === null ? 0 : 1, CLM: best !== null && clear.length === 0 ? 1 : 0}};
  for (var b = 0; b < BANDS.length; b++) {{
    var name = BANDS[b];
    if (clear.length > 0) {{
      px[name] = lowerMedian(clear.map(function (c) {{ return c[name]; }}));
    }} else {{
      px[name] = best === null ? 0 : best[name];
    }}
  }}
  return px;
}}

function evaluatePixel(samples, scenes) {{
  var px = {COMPOSITE_REDUCER}(samples, scenes);
  return {{
    default: [{values}],
    masks: [px.dataMask, px.CLM]
  }};
}}
"""


_TILE_RE = re.compile(r"_(T\d{2}[A-Z]{3})_")


class _Session(SentinelHubSession):
    """A SentinelHubSession that turns a 429 from the token endpoint into an HTTP error.

    The stock compliance hook hands any JSON body with an "error" key to oauthlib, which would
    report a rate limit as refused credentials.
    """

    @staticmethod
    def _compliance_hook(response: requests.Response) -> requests.Response:
        if response.status_code == requests.codes.too_many_requests:
            response.raise_for_status()
        return SentinelHubSession._compliance_hook(response)


class SentinelHubProvider:
    """Search and fetch Sentinel-2 L1C (or L2A) through the Sentinel Hub Catalog and Process APIs."""

    name = "sentinelhub"

    def __init__(self, settings: SentinelHubSettings, collection: str = L1C, *, max_px: int = MAX_PX,
                 search_limit: int = 100) -> None:
        if collection not in COLLECTIONS:
            raise ProviderError(f"unknown collection {collection!r}; use one of {', '.join(COLLECTIONS)}")
        if not 64 <= max_px <= MAX_PX:
            raise ValueError(f"max_px must be between 64 and {MAX_PX}")
        self.settings = settings
        self.collection = collection
        self.max_px = max_px
        self.search_limit = search_limit
        self.config = settings.to_shconfig()
        self.data_collection = _data_collection(collection, settings.base_url)
        self.processing_units_spent = 0.0
        self._session: SentinelHubSession | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SentinelHubProvider({self.settings!r}, collection={self.collection!r})"

    # -- plumbing ---------------------------------------------------------------------------------
    def _get_session(self) -> SentinelHubSession:
        if not self.settings.has_credentials:
            raise CredentialsError("no Sentinel Hub credentials: set SH_CLIENT_ID and SH_CLIENT_SECRET (environment "
                                   "or Streamlit secrets); free accounts at https://dataspace.copernicus.eu")
        with self._lock:
            if self._session is None:
                self._session = _Session(config=self.config)
            return self._session

    def _client(self) -> SentinelHubDownloadClient:
        return SentinelHubDownloadClient(config=self.config, session=self._get_session(),
                                         default_retry_time=self.settings.rate_limit_default_wait_s)

    def _error(self, exc: BaseException, what: str) -> ProviderError:
        """Map a sentinelhub/requests/oauthlib failure to a one-line lulc_core error."""
        err = _map_error(exc, what, self.settings, self.collection)
        if isinstance(err, CredentialsError):
            with self._lock:
                self._session = None  # a refused or revoked token: fetch a new one next time
        return err

    # -- search ------------------------------------------------------------------------------------
    def search(self, aoi: AOI, window: DateWindow, max_cloud: float = 100.0) -> list[Acquisition]:
        """Catalog API: acquisitions over ``aoi`` within ``window`` with cloud <= ``max_cloud`` %, by date."""
        start, end = window.to_rfc3339()
        flt = None if max_cloud >= 100 else f"eo:cloud_cover <= {float(max_cloud):g}"
        try:
            catalog = SentinelHubCatalog(config=self.config)
            catalog.client = self._client()
            results = catalog.search(self.data_collection, time=(start, end),
                                     geometry=Geometry(aoi.geometry, CRS.WGS84), filter=flt,
                                     limit=self.search_limit)
            features = list(results)
        except ProviderError:
            raise
        except Exception as exc:
            raise self._error(exc, "catalog search") from _cause(exc)
        acqs: dict[str, Acquisition] = {}
        for f in features:
            try:
                acq = _acquisition(f)
            except (KeyError, ValueError, TypeError) as exc:
                raise ProviderError(f"Sentinel Hub catalog returned an unreadable feature ({exc})") from None
            if acq.cloud_cover <= max_cloud:
                acqs[acq.id] = acq
        return sorted(acqs.values(), key=lambda a: (a.datetime, a.id))

    # -- fetch -------------------------------------------------------------------------------------
    def fetch(self, aoi: AOI, window: DateWindow, acquisition: Acquisition | None = None,
              max_cloud: float = 100.0, progress: ProgressFn | None = None) -> Scene:
        """A Scene on ``aoi.grid``: the one acquisition's day, the window's least-cloudy mosaic when the
        window holds one acquisition date, or its per-pixel median composite when it holds several."""
        grid = aoi.grid
        composite = False
        if acquisition is None:
            if progress:
                progress(0.0, "searching the Sentinel Hub catalog")
            acqs = self.search(aoi, window, max_cloud)
            if not acqs:
                raise NoImageryError(f"Sentinel Hub has no {self.collection} acquisition over this AOI within {window} "
                                     f"with cloud <= {max_cloud:g}%; widen the date window or raise the cloud limit")
            time_range = window.to_rfc3339()
            maxcc: float | None = min(max(float(max_cloud), 0.0), 100.0)
            composite = len({a.date for a in acqs}) > 1
        else:
            acqs = [acquisition]
            day = acquisition.date.isoformat()
            time_range = (f"{day}T00:00:00Z", f"{day}T23:59:59Z")
            maxcc = None
        parts = grid.split(self.max_px)
        try:
            client = self._client()  # one client: its rate-limit pacing spans the sub-requests
        except ProviderError:
            raise
        except Exception as exc:
            raise self._error(exc, "Process API request") from _cause(exc)
        data = np.zeros((13, grid.height, grid.width), dtype=np.uint16)
        valid = np.zeros((grid.height, grid.width), dtype=bool)
        cloud = np.zeros_like(valid)
        pu = 0.0
        what = f" (median of {len({a.date for a in acqs})} dates)" if composite else ""
        for i, (r0, c0, sub) in enumerate(parts):
            if progress:
                progress(i / len(parts), f"downloading part {i + 1} of {len(parts)} from Sentinel Hub{what}")
            request = self._process_request(sub, time_range, maxcc, composite)
            try:
                (response,) = client.download(request.download_list, max_threads=1, decode_data=False)
            except ProviderError:
                raise
            except Exception as exc:
                raise self._error(exc, "Process API request") from _cause(exc)
            bands, masks = _decode(response, sub, i, len(parts))
            data[:, r0:r0 + sub.height, c0:c0 + sub.width] = bands
            valid[r0:r0 + sub.height, c0:c0 + sub.width] = masks[0] == 1
            cloud[r0:r0 + sub.height, c0:c0 + sub.width] = masks[1] == 1
            pu += _processing_units(response)
        with self._lock:
            self.processing_units_spent += pu
        if progress:
            progress(1.0, "done")
        if not valid.any():
            raise NoImageryError(f"Sentinel Hub returned no valid pixels over this AOI in {window} "
                                 f"(cloud <= {max_cloud:g}%)")
        cloud &= valid
        return Scene(data, EUROSAT_BAND_ORDER, valid, cloud, grid.crs, grid.transform,
                     tuple(sorted({a.date for a in acqs})), self.name, self.collection, pu, tuple(acqs))

    def _process_request(self, grid: PatchGrid, time_range: tuple[str, str], maxcc: float | None,
                         composite: bool = False) -> SentinelHubRequest:
        # maxCloudCoverage goes in as given (percent): the client's own maxcc rounds it down to an integer
        extra: dict[str, Any] = {"processing": {"harmonizeValues": True}}
        if maxcc is not None:
            extra["dataFilter"] = {"maxCloudCoverage": maxcc}
        # ORBIT mosaicking hands every orbit's sample to the evalscript: no mosaicking order applies
        input_data = SentinelHubRequest.input_data(
            self.data_collection, time_interval=time_range,
            mosaicking_order=None if composite else MosaickingOrder.LEAST_CC,
            upsampling=ResamplingType.BILINEAR, other_args=extra)
        script = composite_evalscript(self.collection) if composite else evalscript(self.collection)
        return SentinelHubRequest(
            evalscript=script, input_data=[input_data],
            responses=[SentinelHubRequest.output_response("default", MimeType.TIFF),
                       SentinelHubRequest.output_response("masks", MimeType.TIFF)],
            bbox=BBox(grid.bounds, CRS(grid.crs)), size=(grid.width, grid.height), config=self.config)

    def cache_parts(self, aoi: AOI, window: DateWindow, acquisition: Acquisition | None,
                    max_cloud: float) -> dict[str, Any]:
        """What determines the pixels: endpoint URL, collection, grid, window/acquisition... never credentials.

        A window fetch (no acquisition) is a median composite whenever the window holds several
        acquisition dates, which only a catalog search would tell: its key carries the composite
        method, so it never matches a key of the least-cloudy mosaic that such a fetch once was.
        A chosen acquisition's key is unchanged.
        """
        parts = {"provider": self.name, "endpoint": self.settings.base_url, "collection": self.collection,
                 "grid": aoi.grid.to_dict(), "window": str(window), "acquisition": acquisition_parts(acquisition),
                 "max_cloud": max_cloud, "bands": list(EUROSAT_BAND_ORDER), "evalscript": EVALSCRIPT_VERSION}
        if acquisition is None:
            parts["composite"] = f"orbit-median-of-clear-v{COMPOSITE_VERSION}"
        return parts


# -- helpers ----------------------------------------------------------------------------------------
def _data_collection(collection: str, base_url: str) -> DataCollection:
    """The predefined S2 collection bound to ``base_url`` (see the 'Catch' in SENTINELHUB_API.md)."""
    base = DataCollection.SENTINEL2_L2A if collection == L2A else DataCollection.SENTINEL2_L1C
    digest = hashlib.sha1(base_url.encode()).hexdigest()[:12]
    return base.define_from(f"LULC_{base.name}_{digest}", service_url=base_url)


def _acquisition(f: Mapping[str, Any]) -> Acquisition:
    props = f["properties"]
    when = dt.datetime.fromisoformat(str(props["datetime"]).replace("Z", "+00:00"))
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    fid = str(f["id"])
    m = _TILE_RE.search(fid)
    cc = props.get("eo:cloud_cover")
    return Acquisition(when, float(cc) if cc is not None else 100.0, m[1] if m else "", "sentinelhub", fid)


def _processing_units(response: DownloadResponse) -> float:
    for k, v in (response.headers or {}).items():
        if k.lower() == "x-processingunits-spent":
            try:
                return float(v)
            except (TypeError, ValueError):
                return 0.0
    return 0.0


def _read_tiff(blob: bytes) -> np.ndarray:
    arr = tifffile.imread(io.BytesIO(blob))
    return arr[..., None] if arr.ndim == 2 else arr


def _decode(response: DownloadResponse, grid: PatchGrid, index: int, total: int) -> tuple[np.ndarray, np.ndarray]:
    """(13, H, W) uint16 bands and (2, H, W) uint8 masks from a tar response; ProviderError if unreadable."""
    part = f"part {index + 1} of {total}" if total > 1 else "the response"
    try:
        with tarfile.open(fileobj=io.BytesIO(response.content)) as tar:
            files = {}
            for member in tar.getmembers():
                fh = tar.extractfile(member)
                if fh is not None:
                    files[member.name] = fh.read()
        missing = {"default.tif", "masks.tif"} - set(files)
        if missing:
            raise ValueError(f"missing {', '.join(sorted(missing))}")
        bands, masks = _read_tiff(files["default.tif"]), _read_tiff(files["masks.tif"])
        want = (grid.height, grid.width)
        if bands.shape != want + (13,) or masks.shape != want + (2,):
            raise ValueError(f"got shapes {bands.shape} and {masks.shape}, expected {want + (13,)} and {want + (2,)}")
        return (np.moveaxis(bands, -1, 0).astype(np.uint16, copy=False),
                np.moveaxis(masks, -1, 0).astype(np.uint8, copy=False))
    except Exception as exc:
        reason = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise ProviderError(f"Sentinel Hub sent an unreadable image for {part} (truncated or corrupt "
                            f"tar/TIFF: {reason}); nothing was kept, try again") from None


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


def _map_error(exc: BaseException, what: str, s: SentinelHubSettings, collection: str) -> ProviderError:
    host = urlsplit(s.base_url).netloc or s.base_url
    check = f"check SH_CLIENT_ID / SH_CLIENT_SECRET and the endpoint ({s.endpoint}, {s.base_url})"
    if isinstance(exc, ProviderError):
        return exc
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
                return RateLimitError(_one_line(f"the Sentinel Hub token endpoint is rate limiting (HTTP 429); wait "
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
                                       f"{host}; the service may be busy: try again later or raise the timeout"))
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


__all__ = ["COMPOSITE_VERSION", "EVALSCRIPT_VERSION", "MAX_PX", "ENDPOINTS", "SentinelHubSettings",
           "SentinelHubProvider", "composite_evalscript", "evalscript", "redact"]
