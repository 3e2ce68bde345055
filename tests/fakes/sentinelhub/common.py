"""Paths, collections and request parsing shared by the fake's endpoints."""

from __future__ import annotations

import datetime as dt
from http import HTTPStatus
from typing import Any

from lulc_core.bands import EUROSAT_BAND_ORDER
from lulc_core.providers.sentinelhub.costs import PROCESS_API_MAX_PX

TOKEN_PATH = "/auth/realms/CDSE/protocol/openid-connect/token"
CATALOG_PATH = "/api/v1/catalog/1.0.0/search"
PROCESS_PATH = "/api/v1/process"
ENDPOINT_PATHS = {"token": TOKEN_PATH, "catalog": CATALOG_PATH, "process": PROCESS_PATH}
#: The Process API's largest output side, the one figure the product uses too.
MAX_PX = PROCESS_API_MAX_PX
MAX_LIMIT = 100
SENSING_TIME = dt.time(10, 10, 6)
S2_L1C, S2_L2A = "sentinel-2-l1c", "sentinel-2-l2a"
COLLECTION_ALIASES = {"sentinel-2-l1c": S2_L1C, "s2l1c": S2_L1C, "sentinel-2-l2a": S2_L2A, "s2l2a": S2_L2A}
#: Bands each collection offers (dataMask and CLM besides).
COLLECTION_BANDS = {S2_L1C: set(EUROSAT_BAND_ORDER),
                    S2_L2A: set(EUROSAT_BAND_ORDER) - {"B10"} | {"SCL", "AOT", "WVP"}}


class ServiceError(Exception):
    """An error answer of the service: HTTP status, message and Sentinel Hub error code."""

    def __init__(self, status: int, message: str, code: str = "COMMON_BAD_PAYLOAD") -> None:
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


def http_reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def parse_time(text: str) -> dt.datetime:
    try:
        t = dt.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        raise ServiceError(400, f"Invalid time {text!r}") from None
    return t if t.tzinfo else t.replace(tzinfo=dt.timezone.utc)


def parse_interval(text: Any) -> tuple[dt.datetime | None, dt.datetime | None]:
    if not text:
        return None, None
    parts = str(text).split("/")
    if len(parts) == 1:
        t = parse_time(parts[0])
        return t, t
    if len(parts) != 2:
        raise ServiceError(400, f"Invalid datetime interval {text!r}")
    a = None if parts[0] in ("", "..") else parse_time(parts[0])
    b = None if parts[1] in ("", "..") else parse_time(parts[1])
    return a, b
