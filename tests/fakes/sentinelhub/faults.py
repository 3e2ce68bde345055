"""Fault injection: what the next request(s) to an endpoint should suffer, and the error bodies sent."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler as RequestHandler
from typing import Any

from tests.fakes.sentinelhub.common import ENDPOINT_PATHS, http_reason

#: A 403 body of the kind the service sends when the monthly processing units are spent.
QUOTA_EXCEEDED_BODY = {"error": {"status": 403, "reason": "Forbidden", "code": "COMMON_INSUFFICIENT_PERMISSIONS",
                                 "message": "You have exceeded your monthly quota of processing units "
                                            "(limit 10000)."}}
NO_PERMISSION_BODY = {"error": {"status": 403, "reason": "Forbidden", "code": "COMMON_INSUFFICIENT_PERMISSIONS",
                                "message": "You don't have permission to access this resource."}}


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


class FaultsMixin:
    """Fault queue of :class:`~tests.fakes.sentinelhub.server.FakeSentinelHub` (uses its ``_lock``,
    ``_faults`` and ``_send``)."""

    _lock: threading.Lock
    _faults: list[Fault]

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

    def _take_fault(self, endpoint: str) -> Fault | None:
        with self._lock:
            for f in self._faults:
                if f.endpoint == endpoint and (f.times is None or f.hits < f.times):
                    f.hits += 1
                    return f
        return None

    def _send_fault(self, h: RequestHandler, endpoint: str, f: Fault) -> int:
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
                       }.get(status, http_reason(status))
                body = {"error": {"status": status, "reason": http_reason(status), "message": msg,
                                  "code": "COMMON_TOO_MANY_REQUESTS" if status == 429 else "COMMON_EXCEPTION"}}
        if isinstance(body, (dict, list)):
            data, ctype = json.dumps(body).encode(), "application/json"
        else:
            data = body.encode() if isinstance(body, str) else bytes(body)
            ctype = "text/plain; charset=utf-8"
        return self._send(h, status, data, ctype, headers, truncate=f.truncate)
