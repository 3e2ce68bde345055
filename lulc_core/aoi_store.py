"""Areas kept on the server under a short id, so that a link can name a drawn or uploaded polygon
(``aoi=<id>``) instead of only its bounding box.

The id is the first 12 hex digits of the SHA-256 of the polygon's WKB and name: the same area always
gets the same id, and an id names one file, ``<folder>/<id>.geojson`` (written once, atomically).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from pathlib import Path

from shapely import geometry as sg
from shapely import wkb

from lulc_core.aoi import AOI
from lulc_core.errors import AOIError

__all__ = ["aoi_id", "store_aoi", "load_aoi", "ID_LENGTH"]

ID_LENGTH = 12
_ID = re.compile(rf"[0-9a-f]{{{ID_LENGTH}}}")


def aoi_id(aoi: AOI) -> str:
    """The area's short id (12 hex digits), the same for the same polygon and name."""
    blob = wkb.dumps(aoi.geometry, hex=False) + b"\0" + aoi.name.encode()
    return hashlib.sha256(blob).hexdigest()[:ID_LENGTH]


def store_aoi(aoi: AOI, folder: Path) -> str:
    """Keep ``aoi`` in ``folder`` (created if needed) and return its id; an area kept before is not rewritten."""
    folder = Path(folder)
    key = aoi_id(aoi)
    path = folder / f"{key}.geojson"
    if path.exists():
        return key
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(aoi.to_geojson(), f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return key


def load_aoi(key: str, folder: Path) -> AOI:
    """The area kept under ``key`` in ``folder``; :class:`AOIError` for an id that is malformed, unknown
    here (e.g. a link from another server) or whose file is unreadable."""
    if not isinstance(key, str) or not _ID.fullmatch(key):
        raise AOIError(f"bad area id {key!r} in the link; it is {ID_LENGTH} hex digits")
    path = Path(folder) / f"{key}.geojson"
    if not path.exists():
        raise AOIError(f"the area {key} of this link is not kept on this server")
    try:
        feature = json.loads(path.read_text(encoding="utf-8"))
        geometry = sg.shape(feature["geometry"])
        name = feature.get("properties", {}).get("name", "shared area")
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise AOIError(f"the area {key} kept on this server cannot be read ({exc})") from None
    return AOI(geometry, name=name)
