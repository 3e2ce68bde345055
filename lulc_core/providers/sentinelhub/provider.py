"""Sentinel Hub (Copernicus Data Space Ecosystem or the commercial service) through ``sentinelhub``.

Search goes through the Catalog API (one STAC search per date window, paginated by the client),
fetch through the Process API: one request per AOI and date window on the AOI's 10 m UTM
grid, split into sub-requests of at most :data:`~lulc_core.providers.sentinelhub.costs.PROCESS_API_MAX_PX` px a side
(the service's limit) and mosaicked back. The evalscript (:mod:`.evalscript`) asks for the 13
Level-1C bands in EuroSAT order as DN in UINT16, plus ``dataMask`` and ``CLM`` (s2cloudless) in a
second UINT8 output, so the response is a tar of two GeoTIFFs. Processing units are read from
each response's ``x-processingunits-spent`` header.

When no acquisition is chosen and the Catalog finds acquisitions on more than one date in the
window, the fetch is a per-pixel composite instead of a least-cloudy mosaic: still one Process
request per AOI tile, with ``mosaicking: "ORBIT"`` and the median evalscript, charged per data
sample (one per orbit); the units spent are summed into ``Scene.processing_units``.

Every request (a catalog search, each Process API request) runs inside :meth:`_request`: within
``settings.deadline_s`` in all (:mod:`.deadline`: attempts, retry sleeps, rate-limit waits and the
token request together) and with client failures mapped by :func:`.errors.client_errors`. A whole
fetch (its search and every Process API part) also has a total deadline of ``deadline_s`` per part,
so a one-part fetch ends within ``deadline_s`` however its requests fare.
Retries (5xx, connection errors, timeouts) and 429 back-off honouring ``Retry-After``
(milliseconds) are the sentinelhub client's. Credentials never leave :class:`SentinelHubSettings`
except towards the token endpoint, never over plain http (refused before any request), and are
redacted from logs by the filter the constructor installs (:func:`.logs.install_log_redaction`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import io
import re
import tarfile
import threading
from typing import Any, Iterator, Mapping
from urllib.parse import urlsplit

import numpy as np
import requests
import tifffile
from oauthlib.oauth2 import BackendApplicationClient
from requests_oauthlib import OAuth2Session
from sentinelhub import (CRS, BBox, DataCollection, Geometry, MimeType, MosaickingOrder, ResamplingType,
                         SentinelHubCatalog, SentinelHubDownloadClient, SentinelHubRequest, SentinelHubSession)
from sentinelhub.constants import SHConstants
from sentinelhub.download.handlers import fail_user_errors, retry_temporary_errors
from sentinelhub.download.models import DownloadRequest, DownloadResponse
from sentinelhub.types import JsonDict

from lulc_core.aoi import AOI
from lulc_core.grid import Grid
from lulc_core.bands import EUROSAT_BAND_ORDER, N_BANDS
from lulc_core.providers.sentinelhub.costs import PROCESS_API_MAX_PX
from lulc_core.errors import CredentialsError, NoImageryError, ProviderError
from lulc_core.providers.base import ProgressFn, acquisition_parts, check_area_size
from lulc_core.providers.sentinelhub.deadline import (Deadline, DeadlinePassed, bound_to, current_deadline,
                                                      earliest, start_deadline)
from lulc_core.providers.sentinelhub.errors import client_errors, insecure_url_message
from lulc_core.providers.sentinelhub.evalscript import (COMPOSITE_VERSION, EVALSCRIPT_VERSION, composite_evalscript,
                                                        evalscript)
from lulc_core.providers.sentinelhub.logs import install_log_redaction
from lulc_core.providers.sentinelhub.settings import SentinelHubSettings
from lulc_core.collection import DEFAULT_COLLECTION, Collection, get_collection
from lulc_core.scene import Acquisition, DateWindow, Scene
from lulc_core.settings import insecure_transport_allowed

_TILE_RE = re.compile(r"_(T\d{2}[A-Z]{3})_")


class _Session(SentinelHubSession):
    """A SentinelHubSession that turns a 429 from the token endpoint into an HTTP error and asks
    for tokens within the current :func:`~.deadline.deadline` (the stock session sets no timeout).

    The stock compliance hook hands any JSON body with an "error" key to oauthlib, which would
    report a rate limit as refused credentials.
    """

    @retry_temporary_errors
    @fail_user_errors
    def _fetch_token(self, request: DownloadRequest) -> JsonDict:
        limit = current_deadline()
        timeout = self.config.download_timeout_seconds
        if limit is not None:
            limit.check("asking the token endpoint for a token")
            timeout = limit.bound(timeout)
        with OAuth2Session(client=BackendApplicationClient(client_id=self.config.sh_client_id)) as oauth:
            oauth.register_compliance_hook("access_token_response", self._compliance_hook)
            try:
                return oauth.fetch_token(token_url=request.url, client_id=self.config.sh_client_id,
                                         client_secret=self.config.sh_client_secret,
                                         headers={**self.DEFAULT_HEADERS, **SHConstants.HEADERS},
                                         include_client_id=True, timeout=timeout)
            except requests.Timeout:
                if limit is not None and limit.left() <= 0:
                    raise DeadlinePassed("the token endpoint did not answer in time", limit.seconds, limit.scope) from None
                raise

    @staticmethod
    def _compliance_hook(response: requests.Response) -> requests.Response:
        if response.status_code == requests.codes.too_many_requests:
            response.raise_for_status()
        return SentinelHubSession._compliance_hook(response)


class _DeadlineClient(SentinelHubDownloadClient):
    """The stock download client, each HTTP request bounded by the current deadline.

    Before a 429's wait or a retry's sleep that would end past the deadline it stops at once
    (:class:`DeadlinePassed`) instead of sleeping into it.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.deadline: Deadline | None = None  # set by the provider for each request
        self._failures: dict[int, int] = {}  # per request: temporary failures so far (retry sleeps grow)

    def _get_session_headers(self) -> JsonDict:
        with bound_to(self.deadline):  # a token refresh happens here, in the download thread
            return super()._get_session_headers()

    def _do_download(self, request: DownloadRequest) -> requests.Response:
        limit = self.deadline
        if limit is None:
            return super()._do_download(request)
        limit.check()
        try:
            response = requests.request(request.request_type.value, url=request.url, json=request.post_values,
                                        headers=self._prepare_headers(request),
                                        timeout=limit.bound(self.config.download_timeout_seconds))
        except requests.Timeout:
            if limit.left() <= 0:
                raise DeadlinePassed("the service did not answer in time", limit.seconds, limit.scope) from None
            self._before_retry(request, limit, "the service did not answer")
            raise
        except requests.ConnectionError:
            self._before_retry(request, limit, "the connection failed")
            raise
        if response.status_code == requests.codes.too_many_requests:
            wait_ms = float(response.headers.get("Retry-After", self.default_retry_time))
            limit.refuse_wait(wait_ms / 1000, f"rate limited (HTTP 429), asked to wait {wait_ms / 1000:g} s more")
        elif response.status_code >= 500:
            self._before_retry(request, limit, f"HTTP {response.status_code}")
        return response

    def _before_retry(self, request: DownloadRequest, limit: Deadline, what: str) -> None:
        """Stop now if the client's next retry sleep (download_sleep_time x 3 ** failures) ends past the deadline."""
        failures = self._failures[id(request)] = self._failures.get(id(request), 0) + 1
        if failures < self.config.max_download_attempts:
            sleep = self.config.download_sleep_time * 3 ** (failures - 1)
            limit.refuse_wait(sleep, f"{what}; the next retry would start after {sleep:g} s")


class SentinelHubProvider:
    """Search and fetch Sentinel-2 L1C (or L2A) through the Sentinel Hub Catalog and Process APIs."""

    name = "sentinelhub"

    def __init__(self, settings: SentinelHubSettings, collection: str = DEFAULT_COLLECTION, *,
                 max_px: int = PROCESS_API_MAX_PX, search_limit: int = 100) -> None:
        install_log_redaction()
        collection = get_collection(collection)
        if not 64 <= max_px <= PROCESS_API_MAX_PX:
            raise ValueError(f"max_px must be between 64 and {PROCESS_API_MAX_PX}")
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
        return f"SentinelHubProvider({self.settings!r}, collection={self.collection.value!r})"

    # -- plumbing ---------------------------------------------------------------------------------
    def _get_session(self) -> SentinelHubSession:
        if not self.settings.has_credentials:
            raise CredentialsError("no Sentinel Hub credentials: set SH_CLIENT_ID and SH_CLIENT_SECRET (environment "
                                   "or Streamlit secrets); free accounts at https://dataspace.copernicus.eu")
        self._check_https()
        with self._lock:
            if self._session is None:
                self._session = _Session(config=self.config)
            return self._session

    def _check_https(self) -> None:
        """Refuse plain-http addresses before any request (requests-oauthlib would call that refused credentials).

        Only where ``OAUTHLIB_INSECURE_TRANSPORT`` is set (a local test server on plain HTTP) is http allowed.
        """
        if insecure_transport_allowed():
            return
        for name, url in (("SH_TOKEN_URL", self.settings.token_url), ("SH_BASE_URL", self.settings.base_url)):
            if urlsplit(url).scheme.lower() != "https":
                raise ProviderError(insecure_url_message(name, url, self.settings.endpoint))

    def _client(self) -> "_DeadlineClient":
        return _DeadlineClient(config=self.config, session=self._get_session(),
                               default_retry_time=self.settings.rate_limit_default_wait_s)

    def _forget_session(self) -> None:
        with self._lock:
            self._session = None  # a refused or revoked token: fetch a new one next time

    @contextlib.contextmanager
    def _request(self, what: str, within: Deadline | None = None) -> Iterator[Deadline]:
        """One request: within ``settings.deadline_s`` in all and within ``within`` (a fetch's total) when
        given (the deadline is handed to the client and the session's token request), failures mapped by
        :func:`client_errors`."""
        limit = earliest(start_deadline(self.settings.deadline_s), within)
        with client_errors(what, self.settings, self.collection, on_refused=self._forget_session):
            with bound_to(limit):  # a first token request happens in this thread
                yield limit

    # -- search ------------------------------------------------------------------------------------
    def search(self, aoi: AOI, window: DateWindow, max_cloud: float = 100.0) -> list[Acquisition]:
        """Catalog API: acquisitions over ``aoi`` within ``window`` with cloud <= ``max_cloud`` %, by date."""
        check_area_size(aoi)
        return self._search(aoi, window, max_cloud)

    def _search(self, aoi: AOI, window: DateWindow, max_cloud: float,
                within: Deadline | None = None) -> list[Acquisition]:
        start, end = window.to_rfc3339()
        flt = None if max_cloud >= 100 else f"eo:cloud_cover <= {float(max_cloud):g}"
        with self._request("catalog search", within) as limit:
            catalog = SentinelHubCatalog(config=self.config)
            catalog.client = self._client()
            catalog.client.deadline = limit
            results = catalog.search(self.data_collection, time=(start, end),
                                     geometry=Geometry(aoi.geometry, CRS.WGS84), filter=flt,
                                     limit=self.search_limit)
            features = list(results)
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
              max_cloud: float = 100.0, progress: ProgressFn | None = None,
              found: list[Acquisition] | None = None) -> Scene:
        """A Scene on ``aoi.grid``: the one acquisition's day, the window's least-cloudy mosaic when the
        window holds one acquisition date, or its per-pixel median composite when it holds several.
        ``found``: this window's :meth:`search` result (no second catalog search); None: search here."""
        check_area_size(aoi)
        grid = aoi.grid
        parts = grid.split(self.max_px)
        total = start_deadline(self.settings.deadline_s * len(parts), scope="the whole fetch's")
        composite = False
        if acquisition is None:
            if found is None:
                if progress:
                    progress(0.0, "searching the Sentinel Hub catalog")
                found = self._search(aoi, window, max_cloud, total)
            acqs = list(found)
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
        client: _DeadlineClient | None = None  # one client: its rate-limit pacing spans the parts
        data = np.zeros((N_BANDS, grid.height, grid.width), dtype=np.uint16)
        valid = np.zeros((grid.height, grid.width), dtype=bool)
        cloud = np.zeros_like(valid)
        pu = 0.0
        what = f" (median of {len({a.date for a in acqs})} dates)" if composite else ""
        for i, (r0, c0, sub) in enumerate(parts):
            if progress:
                progress(i / len(parts), f"downloading part {i + 1} of {len(parts)} from Sentinel Hub{what}")
            request = self._process_request(sub, time_range, maxcc, composite)
            part = f" (part {i + 1} of {len(parts)})" if len(parts) > 1 else ""
            with self._request(f"Process API request{part}", total) as limit:
                client = client or self._client()
                client.deadline = limit
                (response,) = client.download(request.download_list, max_threads=1, decode_data=False)
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
        return Scene(data=data, bands=EUROSAT_BAND_ORDER, valid=valid, cloud=cloud, crs=grid.crs,
                     transform=grid.transform, dates=tuple(sorted({a.date for a in acqs})), provider=self.name,
                     collection=self.collection, processing_units=pu, acquisitions=tuple(acqs))

    def _process_request(self, grid: Grid, time_range: tuple[str, str], maxcc: float | None,
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
def _data_collection(collection: Collection, base_url: str) -> DataCollection:
    """The predefined S2 collection bound to ``base_url`` (see the 'Catch' in SENTINELHUB_API.md)."""
    base = getattr(DataCollection, collection.facts.sentinelhub_name)
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


def _decode(response: DownloadResponse, grid: Grid, index: int, total: int) -> tuple[np.ndarray, np.ndarray]:
    """(bands, H, W) uint16 bands and (2, H, W) uint8 masks from a tar response; ProviderError if unreadable."""
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
        if bands.shape != want + (N_BANDS,) or masks.shape != want + (2,):
            raise ValueError(f"got shapes {bands.shape} and {masks.shape}, expected {want + (N_BANDS,)} and {want + (2,)}")
        return (np.moveaxis(bands, -1, 0).astype(np.uint16, copy=False),
                np.moveaxis(masks, -1, 0).astype(np.uint8, copy=False))
    except Exception as exc:
        reason = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise ProviderError(f"Sentinel Hub sent an unreadable image for {part} (truncated or corrupt "
                            f"tar/TIFF: {reason}); nothing was kept, try again") from None
