"""A local fake of the Sentinel Hub / CDSE services, for tests and offline development.

:class:`FakeSentinelHub` is a real HTTP(S) server on 127.0.0.1 (stdlib ``http.server``, one
thread per request) that speaks enough of the service for the real ``sentinelhub`` client:

- the OAuth2 token endpoint (client-credentials form POST, JWT-shaped tokens, 401
  ``invalid_client`` for wrong credentials);
- Catalog STAC search (``POST {base}/api/v1/catalog/1.0.0/search``) over a scene library read
  with :class:`~lulc_core.providers.local.LocalFilesProvider` (the bundled OSCD demo scenes by
  default): ``bbox``/``intersects``, ``datetime``, ``collections``, a CQL2-text
  ``eo:cloud_cover`` filter, ``limit`` and ``next`` pagination;
- the Process API (``POST {base}/api/v1/process``): bounds (bbox or geometry, EPSG or CRS84),
  width/height (at most 2500 each, as the service) or resx/resy, ``dataFilter`` (timeRange,
  maxCloudCoverage, mosaickingOrder), an evalscript read with regular expressions (never
  executed): the ``setup()`` input bands, units and outputs, and which sample fields
  ``evaluatePixel`` returns per output. Pixels are the library's own scenes resampled (bilinear)
  onto the requested grid with :meth:`SceneSource.read_on_grid`, mosaicked like
  ``LocalFilesProvider.fetch``; ``dataMask`` = all 13 bands > 0 and ``CLM`` =
  :func:`bright_cloud_mask`. One output comes back as a GeoTIFF, several as
  ``application/x-tar`` with ``<id>.tif`` each; ``x-processingunits-spent`` follows the
  documented formula. ``sentinel-2-l2a`` serves the same (Level-1C) pixels without B10.
- ORBIT mosaicking (``mosaicking: "ORBIT"`` or ``Mosaicking.ORBIT`` in ``setup()``, where the
  real API takes it): one sample per orbit, i.e. per acquisition date of the library's scenes in
  the time range over the bbox (with maxCloudCoverage applied to each tile, and the tiles of one
  date mosaicked as above). The evalscript is still not executed: ``evaluatePixel(samples,
  scenes)`` must reduce the samples with a reducer the fake knows (``var px =
  clearMedian(samples, scenes);``, defined in the script) and return ``px.<field>`` values or
  constants; the fake then computes that reducer from its data (:data:`ORBIT_REDUCERS`). Other
  ORBIT scripts, and TILE mosaicking, are answered 400.
- Processing units of multi-temporal requests: the service's "number of data samples"
  multiplication factor, i.e. an ORBIT request costs the single-request formula times the number
  of orbits (acquisition dates) over its bbox in the time range (at least 1), with the same
  0.005 PU minimum per request. A SIMPLE request is one sample, as before.

Fault injection (:meth:`FakeSentinelHub.inject`) makes the next request(s) to an endpoint fail
with a status (401, 403, 429 with ``Retry-After`` in milliseconds, 5xx), answer slowly, send a
truncated body, or find nothing. Every request is logged as (method, path, status).

HTTPS or HTTP: requests-oauthlib refuses a plain ``http://`` token URL unless
``OAUTHLIB_INSECURE_TRANSPORT=1``, and the project must never need that variable. The fake
therefore serves HTTPS by default with a self-signed certificate for 127.0.0.1/localhost made
at start-up by the ``openssl`` command-line tool (the ``cryptography`` package is not a
dependency); clients trust it through ``REQUESTS_CA_BUNDLE=<fake.ca_file>`` (the sentinelhub
client calls ``requests`` without a ``verify`` argument, so the environment variable is the
only hook). Where ``openssl`` is missing, or with ``tls=False``, it serves plain HTTP, and only
then must a test set ``OAUTHLIB_INSECURE_TRANSPORT=1`` (with monkeypatch, never globally).

Run it standalone with ``python -m lulc_core.fake_sentinelhub --port 8765``.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import io
import json
import logging
import re
import secrets
import shutil
import socket
import ssl
import subprocess
import tarfile
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pyproj
from affine import Affine
from rasterio.features import geometry_mask
from rasterio.io import MemoryFile
from rasterio.warp import transform_bounds
from shapely import geometry as sg

from lulc_core.aoi import PatchGrid
from lulc_core.bands import EUROSAT_BAND_ORDER
from lulc_core.providers.local import (DEMO_DIR, LocalFilesProvider, SceneSource, bright_cloud_mask,
                                       lower_median_of_clear)

log = logging.getLogger(__name__)

TOKEN_PATH = "/auth/realms/CDSE/protocol/openid-connect/token"
CATALOG_PATH = "/api/v1/catalog/1.0.0/search"
PROCESS_PATH = "/api/v1/process"
ENDPOINT_PATHS = {"token": TOKEN_PATH, "catalog": CATALOG_PATH, "process": PROCESS_PATH}
MAX_PX = 2500
MAX_LIMIT = 100
SENSING_TIME = dt.time(10, 10, 6)
S2_L1C, S2_L2A = "sentinel-2-l1c", "sentinel-2-l2a"
COLLECTION_ALIASES = {"sentinel-2-l1c": S2_L1C, "s2l1c": S2_L1C, "sentinel-2-l2a": S2_L2A, "s2l2a": S2_L2A}
#: Bands each collection offers (dataMask and CLM besides).
COLLECTION_BANDS = {S2_L1C: set(EUROSAT_BAND_ORDER),
                    S2_L2A: set(EUROSAT_BAND_ORDER) - {"B10"} | {"SCL", "AOT", "WVP"}}
#: A 403 body of the kind the service sends when the monthly processing units are spent.
QUOTA_EXCEEDED_BODY = {"error": {"status": 403, "reason": "Forbidden", "code": "COMMON_INSUFFICIENT_PERMISSIONS",
                                 "message": "You have exceeded your monthly quota of processing units "
                                            "(limit 10000)."}}
NO_PERMISSION_BODY = {"error": {"status": 403, "reason": "Forbidden", "code": "COMMON_INSUFFICIENT_PERMISSIONS",
                                "message": "You don't have permission to access this resource."}}


class _HTTPError(Exception):
    def __init__(self, status: int, message: str, code: str = "COMMON_BAD_PAYLOAD") -> None:
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


@dataclass
class Fault:
    """One injected fault: applies to the next ``times`` requests to ``endpoint`` (None: all)."""

    endpoint: str
    status: int | None = None
    times: int | None = 1
    retry_after_ms: int | None = None
    body: Any = None
    delay_s: float = 0.0
    truncate: bool | str = False  # True/"length": Content-Length too large, then cut; "body": a short body
    empty: bool = False  # catalog: no features
    hits: int = 0


@dataclass
class _Evalscript:
    inputs: list[str]
    units: str
    outputs: list[dict[str, Any]] = field(default_factory=list)  # id, bands, sampleType, values
    mosaicking: str = "SIMPLE"
    reducer: str = ""  # ORBIT: the known per-pixel reducer evaluatePixel applies to the samples


#: Per-pixel reducers of ORBIT samples the fake computes (the evalscript function it stands for).
ORBIT_REDUCERS = {
    "clearMedian": "per band, the lower median of the clear samples (dataMask 1 and CLM 0); where no sample is "
                   "clear, the valid sample of the orbit with the least cloud cover (earliest on a tie) with "
                   "CLM 1; dataMask 1 where any sample has data",
}


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_self_signed_cert(folder: Path) -> tuple[Path, Path]:
    """A certificate and key for 127.0.0.1 and localhost, made with the openssl CLI."""
    openssl = shutil.which("openssl")
    if not openssl:
        raise RuntimeError("the openssl command-line tool is not installed")
    cert, key = folder / "fake-sentinelhub.crt", folder / "fake-sentinelhub.key"
    cmd = [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
           "-keyout", str(key), "-out", str(cert), "-days", "7", "-subj", "/CN=127.0.0.1",
           "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
           "-addext", "basicConstraints=critical,CA:TRUE",
           "-addext", "keyUsage=critical,digitalSignature,keyCertSign"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if res.returncode != 0:
        raise RuntimeError(f"openssl failed: {res.stderr.strip()[:300]}")
    return cert, key


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, addr: tuple[str, int], handler: type, fake: "FakeSentinelHub",
                 ssl_context: ssl.SSLContext | None) -> None:
        self.fake = fake
        self.ssl_context = ssl_context
        super().__init__(addr, handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        # TLS handshake in the request's own thread, so a slow client never blocks accept()
        if self.ssl_context is None:
            super().finish_request(request, client_address)
            return
        try:
            request.settimeout(30)
            wrapped = self.ssl_context.wrap_socket(request, server_side=True)
        except (OSError, ssl.SSLError) as exc:
            log.debug("TLS handshake failed: %s", exc)
            return
        try:
            super().finish_request(wrapped, client_address)
        finally:
            wrapped.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("fake sentinel hub: error while serving %s", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.0"
    server_version = "FakeSentinelHub/1.0"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        log.debug("fake sentinel hub: " + format, *args)

    def do_GET(self) -> None:  # noqa: N802
        self.server.fake._dispatch(self, "GET")

    def do_POST(self) -> None:  # noqa: N802
        self.server.fake._dispatch(self, "POST")


class FakeSentinelHub:
    """A running fake of the Sentinel Hub services over a folder of Sentinel-2 scenes.

    Use as a context manager or with :meth:`start` / :meth:`stop`.
    """

    def __init__(self, scenes_root: str | Path = DEMO_DIR, client_id: str = "test-client",
                 client_secret: str = "test-secret", host: str = "127.0.0.1", port: int = 0,
                 tls: bool | None = None, token_lifetime_s: int = 3600) -> None:
        self.scenes_root = Path(scenes_root)
        self.client_id = client_id
        self.client_secret = client_secret
        self.host = host
        self.port = port
        self.tls_requested = tls
        self.token_lifetime_s = token_lifetime_s
        self.library = LocalFilesProvider(self.scenes_root, name="fake-sentinelhub")
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._log: list[tuple[str, str, int]] = []
        self._tokens: dict[str, float] = {}
        self._clouds: dict[Path, float] = {}
        self.process_payloads: list[dict[str, Any]] = []
        self.catalog_payloads: list[dict[str, Any]] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._generation = 0  # bumped by reset(): late answers of earlier tests are not logged
        self._wake = threading.Event()  # set by reset()/stop(): delayed answers give up
        self._tmpdir: Path | None = None
        self.ca_file: Path | None = None
        self.scheme = "https"

    # -- life cycle ---------------------------------------------------------------------
    def start(self) -> "FakeSentinelHub":
        if self._server is not None:
            return self
        self._stopping.clear()
        ctx = None
        self.scheme = "http"
        if self.tls_requested is not False:
            self._tmpdir = Path(tempfile.mkdtemp(prefix="fake-sentinelhub-"))
            try:
                cert, key = make_self_signed_cert(self._tmpdir)
            except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
                if self.tls_requested:
                    raise
                log.warning("fake sentinel hub: serving plain HTTP (%s)", exc)
            else:
                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                ctx.load_cert_chain(cert, key)
                self.ca_file = cert
                self.scheme = "https"
        self._server = _Server((self.host, self.port), _Handler, self, ctx)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"fake-sentinelhub-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None
            self.ca_file = None

    def __enter__(self) -> "FakeSentinelHub":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    @property
    def token_url(self) -> str:
        return self.base_url + TOKEN_PATH

    @property
    def catalog_url(self) -> str:
        return self.base_url + CATALOG_PATH

    @property
    def process_url(self) -> str:
        return self.base_url + PROCESS_PATH

    # -- faults and log -------------------------------------------------------------------
    def inject(self, endpoint: str = "process", status: int | None = None, times: int | None = 1,
               retry_after_ms: int | None = None, body: Any = None, delay_s: float = 0.0,
               truncate: bool | str = False, empty: bool = False) -> Fault:
        """Make the next ``times`` requests (None: every request) to ``endpoint`` misbehave.

        ``endpoint``: "token", "catalog" or "process". ``status``: answer with this HTTP status and
        ``body`` (dict -> JSON, str/bytes as is; a service-like JSON error by default), with a
        ``Retry-After`` header in milliseconds when ``retry_after_ms`` is given. ``delay_s``: wait
        that long before answering. ``truncate``: serve the normal answer but cut it: True or
        "length" sends a Content-Length larger than the bytes sent and closes the connection,
        "body" sends a consistent but cut body. ``empty``: the catalog finds no features.
        Faults queue in order; each applies until its ``times`` are used up.
        """
        if endpoint not in ENDPOINT_PATHS:
            raise ValueError(f"endpoint must be one of {', '.join(ENDPOINT_PATHS)}")
        if truncate not in (False, True, "length", "body"):
            raise ValueError("truncate must be False, True, 'length' or 'body'")
        fault = Fault(endpoint, status, times, retry_after_ms, body, delay_s, truncate, empty)
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def reset(self) -> None:
        """Forget faults, the request log and recorded payloads (issued tokens stay valid).

        Requests still in flight (e.g. held by ``delay_s``) are cut off and not logged.
        """
        with self._lock:
            self._generation += 1
            self._wake.set()
            self._wake = threading.Event()
            self._faults.clear()
            self._log.clear()
            self.process_payloads.clear()
            self.catalog_payloads.clear()

    def revoke_tokens(self) -> None:
        with self._lock:
            self._tokens.clear()

    @property
    def request_log(self) -> list[tuple[str, str, int]]:
        """A copy of the log: (method, path, status) per request, oldest first."""
        with self._lock:
            return list(self._log)

    @staticmethod
    def endpoint_of(path: str) -> str:
        """"token", "catalog", "process" or "" for a request path."""
        path = urlsplit(path).path.rstrip("/")
        return next((k for k, p in ENDPOINT_PATHS.items() if p == path), "")

    def requests_to(self, endpoint: str | None = None) -> list[tuple[str, str, int]]:
        """Logged requests to one endpoint ("token", "catalog", "process"; None: all)."""
        return [e for e in self.request_log if endpoint is None or self.endpoint_of(e[1]) == endpoint]

    def count(self, endpoint: str | None = None, status: int | None = None) -> int:
        """How many requests reached an endpoint (None: any), optionally only those answered ``status``."""
        return sum(1 for e in self.requests_to(endpoint) if status is None or e[2] == status)

    def counts(self) -> dict[str, int]:
        """Requests per endpoint, e.g. {"token": 1, "catalog": 2, "process": 1}; unknown paths under "other"."""
        out = {k: 0 for k in ENDPOINT_PATHS}
        for e in self.request_log:
            key = self.endpoint_of(e[1]) or "other"
            out[key] = out.get(key, 0) + 1
        return out

    def _take_fault(self, endpoint: str) -> Fault | None:
        with self._lock:
            for f in self._faults:
                if f.endpoint == endpoint and (f.times is None or f.hits < f.times):
                    f.hits += 1
                    return f
        return None

    def _record(self, h: _Handler, status: int) -> None:
        """Log a request once, as its answer goes out (before the client can see it)."""
        method, path, generation = getattr(h, "fake_ctx", ("?", "?", -1))
        with self._lock:
            if getattr(h, "fake_recorded", False):
                return
            h.fake_recorded = True  # type: ignore[attr-defined]
            if generation == self._generation:
                self._log.append((method, path, status))

    # -- HTTP plumbing ----------------------------------------------------------------------
    def _dispatch(self, h: _Handler, method: str) -> None:
        path = urlsplit(h.path).path.rstrip("/") or "/"
        endpoint = self.endpoint_of(path)
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        status = 500
        with self._lock:
            generation, wake = self._generation, self._wake
        h.fake_ctx = (method, path, generation)  # type: ignore[attr-defined]
        h.fake_recorded = False  # type: ignore[attr-defined]
        try:
            fault = self._take_fault(endpoint) if endpoint else None
            if fault and fault.delay_s:
                if wake.wait(fault.delay_s) or self._stopping.is_set():
                    status = 499
                    h.close_connection = True
                    return
            if fault and fault.status:
                status = self._send_fault(h, endpoint, fault)
                return
            if method != "POST" or not endpoint:
                raise _HTTPError(404, f"No resource at {method} {path}", "COMMON_NOT_FOUND")
            if endpoint == "token":
                status = self._token(h, raw)
                return
            self._check_token(h)
            payload = self._json(raw)
            if endpoint == "catalog":
                body, ctype, headers = self._catalog(payload, fault)
            else:
                body, ctype, headers = self._process(payload)
            status = self._send(h, 200, body, ctype, headers, truncate=fault.truncate if fault else False)
        except _HTTPError as exc:
            status = self._send_json(h, exc.status, {"error": {"status": exc.status, "reason": _reason(exc.status),
                                                                "message": exc.message, "code": exc.code}})
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            status = 499
        except Exception as exc:  # a bug in the fake: answer 500 with the reason, like a server would
            log.exception("fake sentinel hub failed")
            try:
                status = self._send_json(h, 500, {"error": {"status": 500, "reason": "Internal Server Error",
                                                            "message": f"fake failed: {exc}",
                                                            "code": "COMMON_EXCEPTION"}})
            except OSError:
                status = 500
        finally:
            self._record(h, status)

    def _send(self, h: _Handler, status: int, body: bytes, ctype: str, headers: dict[str, str] | None = None,
              truncate: bool | str = False) -> int:
        sent = body
        length = len(body)
        if truncate:
            sent = body[: max(1, len(body) // 2)]
            length = len(body) if truncate in (True, "length") else len(sent)
        self._record(h, status)
        try:
            h.send_response(status)
            h.send_header("Content-Type", ctype)
            h.send_header("Content-Length", str(length))
            for k, v in (headers or {}).items():
                h.send_header(k, v)
            h.send_header("Connection", "close")
            h.end_headers()
            h.wfile.write(sent)
            h.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            return 499
        if truncate in (True, "length"):
            h.close_connection = True
            try:
                h.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        return status

    def _send_json(self, h: _Handler, status: int, obj: Any, headers: dict[str, str] | None = None) -> int:
        return self._send(h, status, json.dumps(obj).encode(), "application/json", headers)

    def _send_fault(self, h: _Handler, endpoint: str, f: Fault) -> int:
        status = int(f.status or 500)
        headers = {"Retry-After": str(int(f.retry_after_ms))} if f.retry_after_ms is not None else {}
        body = f.body
        if body is None:
            if endpoint == "token" and status in (400, 401):
                body = {"error": "invalid_client", "error_description": "Invalid client or Invalid client credentials"}
            elif status == 403:
                body = NO_PERMISSION_BODY
            else:
                msg = {401: "You are not authorized! Please provide a valid access token within the header "
                            "'Authorization: Bearer <accessToken>'.",
                       429: "You have exceeded the rate limit of this account; retry after the given time.",
                       }.get(status, _reason(status))
                body = {"error": {"status": status, "reason": _reason(status), "message": msg,
                                  "code": "COMMON_TOO_MANY_REQUESTS" if status == 429 else "COMMON_EXCEPTION"}}
        if isinstance(body, (dict, list)):
            data, ctype = json.dumps(body).encode(), "application/json"
        else:
            data = body.encode() if isinstance(body, str) else bytes(body)
            ctype = "text/plain; charset=utf-8"
        return self._send(h, status, data, ctype, headers, truncate=f.truncate)

    @staticmethod
    def _json(raw: bytes) -> dict[str, Any]:
        try:
            obj = json.loads(raw or b"{}")
        except ValueError as exc:
            raise _HTTPError(400, f"Could not parse the request body as JSON: {exc}") from None
        if not isinstance(obj, dict):
            raise _HTTPError(400, "The request body must be a JSON object")
        return obj

    # -- auth ---------------------------------------------------------------------------------
    def _token(self, h: _Handler, raw: bytes) -> int:
        form = {k: v[0] for k, v in parse_qs(raw.decode("utf-8", "replace")).items()}
        cid, secret = form.get("client_id"), form.get("client_secret")
        auth = h.headers.get("Authorization", "")
        if auth.lower().startswith("basic "):
            try:
                cid, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
            except ValueError:
                pass
        if form.get("grant_type") != "client_credentials":
            return self._send_json(h, 400, {"error": "unsupported_grant_type",
                                            "error_description": "Unsupported grant_type"})
        if not (cid and secrets.compare_digest(cid, self.client_id) and secret
                and secrets.compare_digest(secret, self.client_secret)):
            return self._send_json(h, 401, {"error": "invalid_client",
                                            "error_description": "Invalid client or Invalid client credentials"})
        now = time.time()
        exp = int(now + self.token_lifetime_s)
        token = self._jwt({"exp": exp, "iat": int(now), "jti": str(uuid.uuid4()), "iss": self.base_url
                           + "/auth/realms/CDSE", "typ": "Bearer", "azp": cid, "scope": "email profile",
                           "clientId": cid})
        with self._lock:
            self._tokens[token] = exp
        return self._send_json(h, 200, {"access_token": token, "expires_in": self.token_lifetime_s,
                                        "refresh_expires_in": 0, "token_type": "Bearer", "not-before-policy": 0,
                                        "scope": "email profile"})

    @staticmethod
    def _jwt(claims: dict[str, Any]) -> str:
        header = _b64url(json.dumps({"alg": "RS256", "typ": "JWT", "kid": "fake"}).encode())
        # pad the claims so that sentinelhub's SentinelHubSession.info() (standard base64 with its
        # own padding rule) decodes them too: no '-'/'_' and a length that is 0 or 2 mod 4
        for i in range(200):
            body = _b64url(json.dumps({**claims, "pad": "x" * i}).encode())
            if "-" not in body and "_" not in body and len(body) % 4 in (0, 2):
                break
        return f"{header}.{body}.{_b64url(secrets.token_bytes(32))}"

    def _check_token(self, h: _Handler) -> None:
        auth = h.headers.get("Authorization", "")
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
        with self._lock:
            exp = self._tokens.get(token)
        if exp is None or exp < time.time():
            raise _HTTPError(401, "You are not authorized! Please provide a valid access token within the header "
                                  "'Authorization: Bearer <accessToken>'.", "COMMON_UNAUTHORIZED")

    # -- catalog ------------------------------------------------------------------------------
    def _cloud(self, s: SceneSource) -> float:
        with self._lock:
            if s.path in self._clouds:
                return self._clouds[s.path]
        c = s.cloud_cover()
        with self._lock:
            self._clouds[s.path] = c
        return c

    @staticmethod
    def _tile(s: SceneSource) -> str:
        if re.fullmatch(r"\d{2}[A-Z]{3}", s.tile_id or ""):
            return s.tile_id
        c = s.footprint.centroid  # unknown tile: UTM zone + latitude band + a placeholder square
        zone = int((c.x + 180) // 6) % 60 + 1
        band = "CDEFGHJKLMNPQRSTUVWX"[min(19, max(0, int((c.y + 80) // 8)))]
        return f"{zone:02d}{band}AA"

    def feature_id(self, s: SceneSource, collection: str = S2_L1C) -> str:
        d = s.date.strftime("%Y%m%d")
        level = "MSIL2A" if collection == S2_L2A else "MSIL1C"
        return f"S2A_{level}_{d}T101006_N0204_R022_T{self._tile(s)}_{d}T101337"

    def _feature(self, s: SceneSource, collection: str) -> dict[str, Any]:
        fp = s.footprint
        when = dt.datetime.combine(s.date, SENSING_TIME).strftime("%Y-%m-%dT%H:%M:%SZ")
        fid = self.feature_id(s, collection)
        return {"stac_version": "1.0.0", "type": "Feature", "id": fid, "collection": collection,
                "geometry": sg.mapping(fp), "bbox": list(fp.bounds),
                "properties": {"datetime": when, "platform": "sentinel-2a", "instruments": ["msi"],
                               "constellation": "sentinel-2", "gsd": 10, "eo:cloud_cover": self._cloud(s),
                               "proj:epsg": 32600 + int(self._tile(s)[:2])},
                "assets": {}, "links": [{"href": f"{self.base_url}/api/v1/catalog/1.0.0/collections/{collection}"
                                                 f"/items/{fid}", "rel": "self", "type": "application/geo+json"}]}

    def _catalog(self, p: dict[str, Any], fault: Fault | None) -> tuple[bytes, str, dict[str, str]]:
        with self._lock:
            self.catalog_payloads.append(p)
        cols = p.get("collections") or []
        if isinstance(cols, str):
            cols = [cols]
        if len(cols) != 1:
            raise _HTTPError(400, "Exactly one collection must be given in 'collections'")
        collection = COLLECTION_ALIASES.get(str(cols[0]).lower())
        if collection is None:
            raise _HTTPError(404, f"Collection not found: {cols[0]}", "COMMON_NOT_FOUND")
        limit = int(p.get("limit", 10))
        if not 1 <= limit <= MAX_LIMIT:
            raise _HTTPError(400, f"limit must be between 1 and {MAX_LIMIT}")
        start, end = _parse_interval(p.get("datetime"))
        area = None
        if p.get("bbox") is not None:
            b = p["bbox"]
            if len(b) != 4:
                raise _HTTPError(400, "bbox must have 4 numbers")
            area = sg.box(*map(float, b))
        elif p.get("intersects") is not None:
            try:
                area = sg.shape(p["intersects"])
            except Exception as exc:
                raise _HTTPError(400, f"Invalid 'intersects' geometry: {exc}") from None
        tests = _parse_filter(p.get("filter"), p.get("filter-lang", "cql2-text"))
        ids = set(p.get("ids") or [])
        hits = []
        if not (fault and fault.empty):
            for s in sorted(self.library.sources, key=lambda s: (s.date, s.area)):
                when = dt.datetime.combine(s.date, SENSING_TIME, dt.timezone.utc)
                if (start and when < start) or (end and when > end):
                    continue
                if area is not None and not s.footprint.intersects(area):
                    continue
                if ids and self.feature_id(s, collection) not in ids:
                    continue
                if not all(t(self._cloud(s)) for t in tests):
                    continue
                hits.append(s)
        offset = p.get("next") or 0
        try:
            offset = int(offset)
        except (TypeError, ValueError):
            raise _HTTPError(400, f"Invalid 'next' token {offset!r}") from None
        page = hits[offset: offset + limit]
        context: dict[str, Any] = {"limit": limit, "returned": len(page)}
        if offset + limit < len(hits):
            context["next"] = offset + limit
        out = {"type": "FeatureCollection", "features": [self._feature(s, collection) for s in page],
               "links": [], "context": context}
        return json.dumps(out).encode(), "application/geo+json", {}

    # -- process ------------------------------------------------------------------------------
    def _process(self, p: dict[str, Any]) -> tuple[bytes, str, dict[str, str]]:
        with self._lock:
            self.process_payloads.append(p)
        inp = p.get("input") or {}
        bounds = inp.get("bounds") or {}
        crs = _parse_crs((bounds.get("properties") or {}).get("crs"))
        geom = None
        if bounds.get("geometry") is not None:
            try:
                geom = sg.shape(bounds["geometry"])
            except Exception as exc:
                raise _HTTPError(400, f"Invalid bounds geometry: {exc}") from None
        if bounds.get("bbox") is not None:
            bbox = [float(v) for v in bounds["bbox"]]
            if len(bbox) != 4 or bbox[0] >= bbox[2] or bbox[1] >= bbox[3]:
                raise _HTTPError(400, f"Invalid bbox {bounds['bbox']}")
        elif geom is not None:
            bbox = list(geom.bounds)
        else:
            raise _HTTPError(400, "input.bounds needs a bbox or a geometry")
        out = p.get("output") or {}
        width, height = out.get("width"), out.get("height")
        if width is None and height is None and out.get("resx") and out.get("resy"):
            width = int(round((bbox[2] - bbox[0]) / float(out["resx"])))
            height = int(round((bbox[3] - bbox[1]) / float(out["resy"])))
        elif width is None or height is None:
            width = width or 256
            height = height or int(round(width * (bbox[3] - bbox[1]) / (bbox[2] - bbox[0])))
        width, height = int(width), int(height)
        if width < 1 or height < 1:
            raise _HTTPError(400, f"Invalid output size {width} x {height}")
        if width > MAX_PX or height > MAX_PX:
            raise _HTTPError(400, f"Your request of {width:.2f} x {height:.2f} pixels exceeds the limit of "
                                  f"{MAX_PX:.2f} x {MAX_PX:.2f} pixels.", "RENDERER_EXCEPTION")
        data_list = inp.get("data") or []
        if len(data_list) != 1:
            raise _HTTPError(400, "the fake supports exactly one input.data entry")
        d = data_list[0]
        collection = COLLECTION_ALIASES.get(str(d.get("type", "")).lower())
        if collection is None:
            raise _HTTPError(400, f"Unknown data collection type {d.get('type')!r}")
        flt = d.get("dataFilter") or {}
        tr = flt.get("timeRange") or {}
        start = _parse_time(tr.get("from")) if tr.get("from") else None
        end = _parse_time(tr.get("to")) if tr.get("to") else None
        maxcc = float(flt.get("maxCloudCoverage", 100))
        order = flt.get("mosaickingOrder", "mostRecent")
        if order not in ("mostRecent", "leastRecent", "leastCC"):
            raise _HTTPError(400, f"Invalid mosaickingOrder {order!r}")
        script = _parse_evalscript(p.get("evalscript") or "")
        bad = [b for b in script.inputs if b not in COLLECTION_BANDS[collection] | {"dataMask", "CLM"}]
        if bad:
            raise _HTTPError(400, f"Script failed to return: band(s) {', '.join(bad)} not available in "
                                  f"{collection}", "RENDERER_EXCEPTION")
        responses = out.get("responses") or [{"identifier": "default", "format": {"type": "image/tiff"}}]
        by_id = {o["id"]: o for o in script.outputs}
        for r in responses:
            if r.get("identifier") not in by_id:
                raise _HTTPError(400, f"Output {r.get('identifier')!r} requested but not defined in the evalscript")
            fmt = (r.get("format") or {}).get("type", "image/tiff")
            if fmt not in ("image/tiff", "image/tif"):
                raise _HTTPError(400, f"the fake serves image/tiff only, not {fmt}")

        transform = Affine((bbox[2] - bbox[0]) / width, 0, bbox[0], 0, -(bbox[3] - bbox[1]) / height, bbox[3])
        grid = PatchGrid(crs, transform, width, height)
        if script.mosaicking == "ORBIT":
            samples, n_samples = self._render_orbits(grid, crs, bbox, geom, start, end, maxcc, script.reducer)
        else:
            samples, n_samples = self._render(grid, crs, bbox, geom, start, end, maxcc, order), 1
        if script.units.upper() == "REFLECTANCE":
            for b in EUROSAT_BAND_ORDER:
                samples[b] = samples[b] / 10000.0

        files = {}
        for r in responses:
            o = by_id[r["identifier"]]
            arr = np.stack([samples[v] if isinstance(v, str) else np.full((height, width), v, np.float32)
                            for v in o["values"]])
            files[r["identifier"]] = _geotiff(arr, o["sampleType"], crs, transform)
        n_bands = len([b for b in script.inputs if b != "dataMask"])
        float_out = any(by_id[r["identifier"]]["sampleType"] == "FLOAT32" for r in responses)
        # multi-temporal (ORBIT) requests: times the number of data samples (orbits), at least one
        pu = max(0.005, width * height / (512 * 512) * max(n_bands, 1) / 3 * (2 if float_out else 1)
                 * max(n_samples, 1))
        headers = {"x-processingunits-spent": f"{pu:.6g}"}
        if len(responses) == 1:
            return next(iter(files.values())), "image/tiff", headers
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            for ident, blob in files.items():
                info = tarfile.TarInfo(f"{ident}.tif")
                info.size = len(blob)
                info.mtime = int(time.time())
                tar.addfile(info, io.BytesIO(blob))
        return buf.getvalue(), "application/x-tar", headers

    def _candidates(self, crs: str, bbox: list[float], start: dt.datetime | None, end: dt.datetime | None,
                    maxcc: float) -> list[SceneSource]:
        """The library's scenes in the time range over the bbox with cloud <= maxcc (tiles, unsorted)."""
        try:
            wgs = sg.box(*transform_bounds(crs, "EPSG:4326", *bbox))
        except Exception as exc:
            raise _HTTPError(400, f"Cannot transform bbox from {crs}: {exc}") from None
        cands = []
        for s in self.library.sources:
            when = dt.datetime.combine(s.date, SENSING_TIME, dt.timezone.utc)
            if (start and when < start) or (end and when > end):
                continue
            if not s.footprint.intersects(wgs) or self._cloud(s) > maxcc:
                continue
            cands.append(s)
        return cands

    @staticmethod
    def _mosaic(grid: PatchGrid, cands: list[SceneSource]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(13, H, W) float32 DN, dataMask and CLM of ``cands`` in order: the first fills, clear replaces cloud."""
        h, w = grid.height, grid.width
        data = np.zeros((13, h, w), dtype=np.float32)
        valid = np.zeros((h, w), dtype=bool)
        cloud = np.zeros_like(valid)
        for s in cands:  # same rule as LocalFilesProvider.fetch: fill gaps, replace cloud by clear
            arr = s.read_on_grid(grid)
            ok = np.all(arr > 0, axis=0)
            cl = bright_cloud_mask(*(arr[EUROSAT_BAND_ORDER.index(b)] for b in ("B02", "B04", "B11", "B10"))) & ok
            fill = ok & (~valid | (cloud & ~cl))
            if fill.any():
                data[:, fill] = arr[:, fill]
                cloud[fill] = cl[fill]
                valid |= fill
            if valid.all() and not cloud.any():
                break
        return data, valid, cloud

    @staticmethod
    def _samples(grid: PatchGrid, geom: Any, data: np.ndarray, valid: np.ndarray,
                 cloud: np.ndarray) -> dict[str, np.ndarray]:
        if geom is not None:
            inside = ~geometry_mask([sg.mapping(geom)], out_shape=(grid.height, grid.width),
                                    transform=grid.transform)
            valid &= inside
            data[:, ~valid] = 0
            cloud &= valid
        out = {b: data[i] for i, b in enumerate(EUROSAT_BAND_ORDER)}
        out["dataMask"] = valid.astype(np.float32)
        out["CLM"] = cloud.astype(np.float32)
        return out

    def _render(self, grid: PatchGrid, crs: str, bbox: list[float], geom: Any, start: dt.datetime | None,
                end: dt.datetime | None, maxcc: float, order: str) -> dict[str, np.ndarray]:
        """SIMPLE mosaicking: one mosaic of the tiles in the time range, in ``order``."""
        cands = self._candidates(crs, bbox, start, end, maxcc)
        if order == "leastCC":
            cands.sort(key=lambda s: (self._cloud(s), s.date))
        elif order == "leastRecent":
            cands.sort(key=lambda s: s.date)
        else:
            cands.sort(key=lambda s: s.date, reverse=True)
        data, valid, cloud = self._mosaic(grid, cands)
        return self._samples(grid, geom, data, valid, cloud)

    def _render_orbits(self, grid: PatchGrid, crs: str, bbox: list[float], geom: Any, start: dt.datetime | None,
                       end: dt.datetime | None, maxcc: float, reducer: str) -> tuple[dict[str, np.ndarray], int]:
        """ORBIT mosaicking: one sample per acquisition date, reduced per pixel by ``reducer``.

        Returns the reduced outputs (as :meth:`_render`) and the number of samples (orbits).
        Holds every orbit's 13 bands at once: fine for a test server's small requests.
        """
        if reducer not in ORBIT_REDUCERS:
            raise _HTTPError(400, f"the fake knows no ORBIT reducer {reducer!r}", "RENDERER_EXCEPTION")
        by_date: dict[dt.date, list[SceneSource]] = {}
        for s in self._candidates(crs, bbox, start, end, maxcc):
            by_date.setdefault(s.date, []).append(s)
        dates = sorted(by_date, reverse=True)  # samples most recent first (the reducer ignores the order)
        n, h, w = len(dates), grid.height, grid.width
        stack = np.zeros((n, 13, h, w), dtype=np.float32)
        ok = np.zeros((n, h, w), dtype=bool)
        cl = np.zeros((n, h, w), dtype=bool)
        orbit_cc = []
        for i, d in enumerate(dates):
            tiles = sorted(by_date[d], key=lambda s: (self._cloud(s), s.area))
            stack[i], ok[i], cl[i] = self._mosaic(grid, tiles)
            orbit_cc.append(min(self._cloud(s) for s in tiles))  # the evalscript's orbitCloud()
        data, valid, cloud = clear_median_reduce(stack, ok, cl, orbit_cc, dates)
        return self._samples(grid, geom, data, valid, cloud), n

    def describe(self) -> str:
        lines = [f"Fake Sentinel Hub serving {self.scenes_root}",
                 f"  base URL     {self.base_url}", f"  token URL    {self.token_url}",
                 f"  client id    {self.client_id}", f"  client secret {self.client_secret}"]
        if self.ca_file:
            lines.append(f"  certificate  {self.ca_file}")
            lines.append(f"\n  export REQUESTS_CA_BUNDLE={self.ca_file}")
        else:
            lines.append("\n  export OAUTHLIB_INSECURE_TRANSPORT=1   # plain HTTP: for this fake only")
        lines += [f"  export SH_CLIENT_ID={self.client_id} SH_CLIENT_SECRET={self.client_secret}",
                  f"  export SH_BASE_URL={self.base_url} SH_TOKEN_URL={self.token_url}"]
        return "\n".join(lines)


# -- parsing helpers ----------------------------------------------------------------------------
def _reason(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _parse_time(text: str) -> dt.datetime:
    try:
        t = dt.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        raise _HTTPError(400, f"Invalid time {text!r}") from None
    return t if t.tzinfo else t.replace(tzinfo=dt.timezone.utc)


def _parse_interval(text: Any) -> tuple[dt.datetime | None, dt.datetime | None]:
    if not text:
        return None, None
    parts = str(text).split("/")
    if len(parts) == 1:
        t = _parse_time(parts[0])
        return t, t
    if len(parts) != 2:
        raise _HTTPError(400, f"Invalid datetime interval {text!r}")
    a = None if parts[0] in ("", "..") else _parse_time(parts[0])
    b = None if parts[1] in ("", "..") else _parse_time(parts[1])
    return a, b


_OPS = {"<": lambda a, b: a < b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b,
        ">=": lambda a, b: a >= b, "=": lambda a, b: a == b}


def _parse_filter(flt: Any, lang: str) -> list[Any]:
    if not flt:
        return []
    if lang != "cql2-text" or not isinstance(flt, str):
        raise _HTTPError(400, "the fake supports only cql2-text filters")
    tests = []
    for clause in re.split(r"\s+AND\s+", flt.strip(), flags=re.I):
        m = re.fullmatch(r"\(?\s*eo:cloud_cover\s*(<=|>=|<|>|=)\s*([0-9.]+)\s*\)?", clause.strip())
        if not m:
            raise _HTTPError(400, f"Unsupported filter clause {clause!r} (the fake knows eo:cloud_cover)")
        op, val = _OPS[m[1]], float(m[2])
        tests.append(lambda c, op=op, val=val: op(c, val))
    return tests


def _parse_crs(text: Any) -> str:
    if not text:
        return "OGC:CRS84"
    t = str(text)
    if t.endswith("/CRS84") or t.upper() in ("CRS84", "OGC:CRS84"):
        return "OGC:CRS84"
    m = re.search(r"EPSG/0/(\d+)$", t) or re.fullmatch(r"EPSG:(\d+)", t, flags=re.I)
    if not m:
        raise _HTTPError(400, f"Unsupported CRS {t!r}")
    code = int(m[1])
    if code == 4326:
        return "OGC:CRS84"  # Sentinel Hub takes EPSG:4326 bboxes as lon/lat
    try:
        pyproj.CRS.from_epsg(code)
    except pyproj.exceptions.CRSError:
        raise _HTTPError(400, f"Unknown EPSG code {code}") from None
    return f"EPSG:{code}"


def _js_block(src: str, start: int) -> str:
    """The text of the brace block opening at or after ``start`` (naive brace matching)."""
    i = src.find("{", start)
    if i < 0:
        return ""
    depth = 0
    for j in range(i, len(src)):
        if src[j] == "{":
            depth += 1
        elif src[j] == "}":
            depth -= 1
            if depth == 0:
                return src[i + 1: j]
    return src[i + 1:]


def _parse_evalscript(src: str) -> _Evalscript:
    """Read setup() inputs/outputs and evaluatePixel's returned sample fields (no JS execution)."""
    if not src.lstrip().startswith("//VERSION=3"):
        raise _HTTPError(400, "The evalscript must start with //VERSION=3 (the fake knows version 3 only)",
                         "RENDERER_EXCEPTION")
    src_nc = re.sub(r"/\*.*?\*/", "", src, flags=re.S)
    src_nc = re.sub(r"(?<!:)//[^\n]*", "", src_nc)
    m = re.search(r"function\s+setup\s*\([^)]*\)", src_nc)
    if not m:
        raise _HTTPError(400, "The evalscript has no setup() function", "RENDERER_EXCEPTION")
    setup = _js_block(src_nc, m.end())
    mi = re.search(r"\binput\s*:", setup)
    mo = re.search(r"\boutput\s*:", setup)
    if not mi:
        raise _HTTPError(400, "setup() returns no input", "RENDERER_EXCEPTION")
    input_text = setup[mi.end(): mo.start() if mo and mo.start() > mi.end() else len(setup)]
    bm = re.search(r"bands\s*:\s*\[([^\]]*)\]", input_text)
    if bm:
        inputs = re.findall(r"[\"'](\w+)[\"']", bm[1])
    else:  # input: ["B02", "B03"]
        inputs = re.findall(r"[\"'](\w+)[\"']", input_text.split("]")[0])
    if not inputs:
        raise _HTTPError(400, "setup() input names no bands", "RENDERER_EXCEPTION")
    um = re.search(r"units\s*:\s*[\"'](\w+)[\"']", input_text)
    units = um[1] if um else "REFLECTANCE"
    mm = re.search(r"\bmosaicking\s*:\s*(?:[\"'](\w+)[\"']|Mosaicking\.(\w+))", setup)
    mosaicking = ((mm[1] or mm[2]) if mm else "SIMPLE").upper()
    if mosaicking not in ("SIMPLE", "ORBIT"):
        raise _HTTPError(400, f"the fake supports SIMPLE and ORBIT mosaicking, not {mosaicking}", "RENDERER_EXCEPTION")
    outputs: list[dict[str, Any]] = []
    if mo:
        out_text = setup[mo.end():]
        for obj in re.finditer(r"\{([^{}]*)\}", out_text):
            body = obj[1]
            nb = re.search(r"\bbands\s*:\s*(\d+)", body)
            if not nb:
                continue
            im = re.search(r"\bid\s*:\s*[\"']([\w-]+)[\"']", body)
            st = re.search(r"sampleType\s*:\s*(?:[\"'](\w+)[\"']|SampleType\.(\w+))", body)
            outputs.append({"id": im[1] if im else "default", "bands": int(nb[1]),
                            "sampleType": ((st[1] or st[2]) if st else "AUTO").upper()})
    if not outputs:
        outputs = [{"id": "default", "bands": len(inputs), "sampleType": "AUTO"}]
    # what evaluatePixel returns per output: sample.X fields or numeric constants
    em = re.search(r"function\s+evaluatePixel\s*\(\s*(\w+)", src_nc)
    body = _js_block(src_nc, em.end()) if em else ""
    var = em[1] if em else "sample"
    reducer = ""
    if mosaicking == "ORBIT":  # evaluatePixel gets an array of samples: the fake needs a reducer it knows
        rm = re.search(r"\b(?:var|let|const)\s+(\w+)\s*=\s*(\w+)\s*\(\s*" + re.escape(var) + r"\b[^)]*\)", body)
        if (rm is None or rm[2] not in ORBIT_REDUCERS
                or not re.search(r"function\s+" + re.escape(rm[2]) + r"\s*\(", src_nc)):
            raise _HTTPError(400, "the fake evaluates ORBIT evalscripts only through a per-pixel reducer defined in "
                                  f"the script that it knows ({', '.join(ORBIT_REDUCERS)}), e.g. "
                                  f"'var px = clearMedian({var}, scenes);' then px.B04...", "RENDERER_EXCEPTION")
        var, reducer = rm[1], rm[2]
    next_input = 0
    for o in outputs:
        lm = re.search(r"[\"']?\b" + re.escape(o["id"]) + r"\b[\"']?\s*:\s*\[([^\]]*)\]", body)
        if lm is None and len(outputs) == 1:
            lm = re.search(r"return\s*\[([^\]]*)\]", body)
        if lm is not None:
            values: list[Any] = []
            for item in (x.strip() for x in lm[1].split(",") if x.strip()):
                fm = re.fullmatch(re.escape(var) + r"\.(\w+)", item)
                if fm:
                    if fm[1] not in inputs:
                        raise _HTTPError(400, f"evaluatePixel uses {item} but setup() does not request "
                                              f"{fm[1]}", "RENDERER_EXCEPTION")
                    values.append(fm[1])
                else:
                    try:
                        values.append(float(item))
                    except ValueError:
                        raise _HTTPError(400, f"the fake cannot evaluate {item!r} in evaluatePixel",
                                         "RENDERER_EXCEPTION") from None
        else:  # fall back to handing the inputs out in order
            values = inputs[next_input: next_input + o["bands"]]
            next_input += o["bands"]
        if len(values) != o["bands"]:
            raise _HTTPError(400, f"Output {o['id']} declares {o['bands']} bands but evaluatePixel returns "
                                  f"{len(values)}", "RENDERER_EXCEPTION")
        if o["sampleType"] == "AUTO":
            o["sampleType"] = "UINT8"
        if o["sampleType"] not in ("UINT8", "UINT16", "INT8", "INT16", "FLOAT32"):
            raise _HTTPError(400, f"Unknown sampleType {o['sampleType']}", "RENDERER_EXCEPTION")
        o["values"] = values
    return _Evalscript(inputs, units, outputs, mosaicking, reducer)


def clear_median_reduce(stack: np.ndarray, ok: np.ndarray, cloud: np.ndarray, orbit_cc: list[float],
                        dates: list[dt.date]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``clearMedian`` reducer over orbit samples: (13, H, W) values, dataMask and CLM.

    ``stack`` (N, 13, H, W), ``ok`` (dataMask) and ``cloud`` (CLM) (N, H, W), one cloud cover and
    date per orbit. Per band the lower median of the clear samples; where none is clear, the valid
    sample of the least-cloudy orbit (earliest on a tie) with CLM set; zeros where no data.
    """
    n = stack.shape[0]
    if n == 0:
        h, w = stack.shape[2:]
        return np.zeros((13, h, w), np.float32), np.zeros((h, w), bool), np.zeros((h, w), bool)
    clear = ok & ~cloud
    rank = np.empty(n, dtype=np.int64)
    rank[sorted(range(n), key=lambda i: (orbit_cc[i], dates[i]))] = np.arange(n)
    fallback = np.argmin(np.where(ok, rank[:, None, None], n), axis=0)
    valid = ok.any(axis=0)
    no_clear = valid & ~clear.any(axis=0)
    out = np.zeros(stack.shape[1:], dtype=stack.dtype)
    for b in range(stack.shape[1]):
        med, _ = lower_median_of_clear(stack[:, b], clear)
        first = np.take_along_axis(stack[:, b], fallback[None], axis=0)[0]
        out[b] = np.where(no_clear, first, np.where(valid, med, 0))
    return out, valid, no_clear


def _geotiff(arr: np.ndarray, sample_type: str, crs: str, transform: Affine) -> bytes:
    dtype = {"UINT8": "uint8", "UINT16": "uint16", "INT8": "int8", "INT16": "int16", "FLOAT32": "float32"}[sample_type]
    if dtype != "float32":
        info = np.iinfo(dtype)
        arr = np.clip(np.rint(arr), info.min, info.max)
    arr = arr.astype(dtype)
    n, h, w = arr.shape
    with MemoryFile() as mem:
        with mem.open(driver="GTiff", width=w, height=h, count=n, dtype=dtype, crs=crs,
                      transform=transform) as ds:
            ds.write(arr)
        return mem.read()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lulc_core.fake_sentinelhub",
                                 description="Run a local fake of the Sentinel Hub services over Sentinel-2 scenes.")
    ap.add_argument("--port", type=int, default=8765)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--scenes", default=str(DEMO_DIR), help="scene folder (default: the bundled demo scenes)")
    ap.add_argument("--client-id", default="test-client")
    ap.add_argument("--client-secret", default="test-secret")
    ap.add_argument("--http", action="store_true", help="plain HTTP (clients then need OAUTHLIB_INSECURE_TRANSPORT=1)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    fake = FakeSentinelHub(args.scenes, args.client_id, args.client_secret, host=args.host, port=args.port,
                           tls=False if args.http else None)
    import signal

    def _terminate(*_: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _terminate)
    with fake:
        print(fake.describe(), flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
