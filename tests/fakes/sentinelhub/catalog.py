"""Catalog STAC search over the fake's scene library: bbox/intersects, datetime, cloud filter, paging."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

from shapely import geometry as sg

from lulc_core.providers.local import SceneSource
from tests.fakes.sentinelhub.common import (COLLECTION_ALIASES, MAX_LIMIT, S2_L1C, S2_L2A, SENSING_TIME, ServiceError,
                                            parse_interval)
from tests.fakes.sentinelhub.faults import Fault

_OPS = {"<": lambda a, b: a < b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b,
        ">=": lambda a, b: a >= b, "=": lambda a, b: a == b}


def parse_filter(flt: Any, lang: str) -> list[Any]:
    if not flt:
        return []
    if lang != "cql2-text" or not isinstance(flt, str):
        raise ServiceError(400, "the fake supports only cql2-text filters")
    tests = []
    for clause in re.split(r"\s+AND\s+", flt.strip(), flags=re.I):
        m = re.fullmatch(r"\(?\s*eo:cloud_cover\s*(<=|>=|<|>|=)\s*([0-9.]+)\s*\)?", clause.strip())
        if not m:
            raise ServiceError(400, f"Unsupported filter clause {clause!r} (the fake knows eo:cloud_cover)")
        op, val = _OPS[m[1]], float(m[2])
        tests.append(lambda c, op=op, val=val: op(c, val))
    return tests


class CatalogMixin:
    """Catalog search of :class:`~tests.fakes.sentinelhub.server.FakeSentinelHub` (uses its
    ``library``, ``_lock``, ``_clouds`` and ``base_url``)."""

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
            raise ServiceError(400, "Exactly one collection must be given in 'collections'")
        collection = COLLECTION_ALIASES.get(str(cols[0]).lower())
        if collection is None:
            raise ServiceError(404, f"Collection not found: {cols[0]}", "COMMON_NOT_FOUND")
        limit = int(p.get("limit", 10))
        if not 1 <= limit <= MAX_LIMIT:
            raise ServiceError(400, f"limit must be between 1 and {MAX_LIMIT}")
        start, end = parse_interval(p.get("datetime"))
        area = None
        if p.get("bbox") is not None:
            b = p["bbox"]
            if len(b) != 4:
                raise ServiceError(400, "bbox must have 4 numbers")
            area = sg.box(*map(float, b))
        elif p.get("intersects") is not None:
            try:
                area = sg.shape(p["intersects"])
            except Exception as exc:
                raise ServiceError(400, f"Invalid 'intersects' geometry: {exc}") from None
        tests = parse_filter(p.get("filter"), p.get("filter-lang", "cql2-text"))
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
            raise ServiceError(400, f"Invalid 'next' token {offset!r}") from None
        page = hits[offset: offset + limit]
        context: dict[str, Any] = {"limit": limit, "returned": len(page)}
        if offset + limit < len(hits):
            context["next"] = offset + limit
        out = {"type": "FeatureCollection", "features": [self._feature(s, collection) for s in page],
               "links": [], "context": context}
        return json.dumps(out).encode(), "application/geo+json", {}
