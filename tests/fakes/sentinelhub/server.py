"""The fake's HTTP(S) server: life cycle, self-signed TLS, request dispatch, the request log."""

from __future__ import annotations

import json
import logging
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from lulc_core.providers.demo import DEMO_DIR
from lulc_core.providers.local import LocalFilesProvider
from tests.fakes.sentinelhub.catalog import CatalogMixin
from tests.fakes.sentinelhub.common import (CATALOG_PATH, ENDPOINT_PATHS, PROCESS_PATH, TOKEN_PATH, ServiceError,
                                            http_reason)
from tests.fakes.sentinelhub.faults import Fault, FaultsMixin
from tests.fakes.sentinelhub.oauth import OAuthMixin
from tests.fakes.sentinelhub.process import ProcessMixin

log = logging.getLogger(__name__)


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


class RequestHandler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.0"
    server_version = "FakeSentinelHub/1.0"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        log.debug("fake sentinel hub: " + format, *args)

    def do_GET(self) -> None:  # noqa: N802
        self.server.fake._dispatch(self, "GET")

    def do_POST(self) -> None:  # noqa: N802
        self.server.fake._dispatch(self, "POST")


class FakeSentinelHub(FaultsMixin, OAuthMixin, CatalogMixin, ProcessMixin):
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
        self._server = _Server((self.host, self.port), RequestHandler, self, ctx)
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

    def _record(self, h: RequestHandler, status: int) -> None:
        """Log a request once, as its answer goes out (before the client can see it)."""
        method, path, generation = getattr(h, "fake_ctx", ("?", "?", -1))
        with self._lock:
            if getattr(h, "fake_recorded", False):
                return
            h.fake_recorded = True  # type: ignore[attr-defined]
            if generation == self._generation:
                self._log.append((method, path, status))

    # -- HTTP plumbing ----------------------------------------------------------------------
    def _dispatch(self, h: RequestHandler, method: str) -> None:
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
                raise ServiceError(404, f"No resource at {method} {path}", "COMMON_NOT_FOUND")
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
        except ServiceError as exc:
            status = self._send_json(h, exc.status, {"error": {"status": exc.status, "reason": http_reason(exc.status),
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

    def _send(self, h: RequestHandler, status: int, body: bytes, ctype: str, headers: dict[str, str] | None = None,
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

    def _send_json(self, h: RequestHandler, status: int, obj: Any, headers: dict[str, str] | None = None) -> int:
        return self._send(h, status, json.dumps(obj).encode(), "application/json", headers)

    @staticmethod
    def _json(raw: bytes) -> dict[str, Any]:
        try:
            obj = json.loads(raw or b"{}")
        except ValueError as exc:
            raise ServiceError(400, f"Could not parse the request body as JSON: {exc}") from None
        if not isinstance(obj, dict):
            raise ServiceError(400, "The request body must be a JSON object")
        return obj

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
