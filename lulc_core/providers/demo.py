"""The bundled offline demo: real OSCD Sentinel-2 L1C scenes shipped with the project.

:class:`DemoProvider` reads them like any folder of local files and adds what the one-click demo
needs: each area's place name, a small true-colour preview, and the largest whole-patch AOI inside it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.warp import transform_bounds
from shapely import geometry as sg

from lulc_core.aoi import AOI
from lulc_core.grid import lattice_ceil, lattice_floor, reproject_geometry, utm_epsg
from lulc_core.bands import display_rgb
from lulc_core.errors import OutsideCoverageError
from lulc_core.providers.local import LocalFilesProvider

DEMO_DIR = Path(__file__).resolve().parent.parent / "demo_data"
#: The bundled demo areas (the folders of :data:`DEMO_DIR`): the dense model's distillation and the
#: refine threshold's tuning hold them out, and the dense maps' agreement is measured on them.
DEMO_AREAS: tuple[str, ...] = ("montpellier", "norcia", "pisa", "saclay_e", "valencia")


def _index_places(root: Path) -> dict[str, str]:
    """Area -> place name ("Pisa, Italy") from the folder's index.json, where it has one."""
    idx = root / "index.json"
    try:
        return {k: a["place"] for k, a in json.loads(idx.read_text()).get("areas", {}).items() if a.get("place")}
    except (OSError, ValueError, KeyError, AttributeError, TypeError):
        return {}


class DemoProvider(LocalFilesProvider):
    """A folder of named areas (the bundled demo by default) with previews and one-click AOIs."""

    def __init__(self, root: str | Path = DEMO_DIR, name: str = "demo") -> None:
        super().__init__(root, name)

    def areas(self) -> dict[str, dict[str, Any]]:
        """Each area's dates, extent (see :meth:`LocalFilesProvider.areas`) and ``place`` name
        (from index.json; the folder name otherwise)."""
        places = _index_places(self.root)
        return {k: {"dates": a["dates"], "footprint": a["footprint"], "place": places.get(k, k), "bounds": a["bounds"]}
                for k, a in super().areas().items()}

    def preview(self, area: str, max_side: int = 400) -> tuple[np.ndarray, tuple[float, float, float, float]]:
        """A small true-colour preview of an area's first date: (H, W, 3) uint8 and its lon/lat bounds."""
        source = next(s for s in self.sources if s.area == area)
        with rasterio.open(source.reference) as ref:
            scale = max(ref.width, ref.height) / max_side
            shape = (max(1, int(ref.height / scale)), max(1, int(ref.width / scale)))
            west, south, east, north = transform_bounds(ref.crs, "EPSG:4326", *ref.bounds)
        rgb = []
        for band in ("B04", "B03", "B02"):
            path, index = source.locate(band)
            with rasterio.open(path) as ds:
                rgb.append(ds.read(index, out_shape=shape, resampling=Resampling.average))
        return display_rgb(np.stack(rgb)), (west, south, east, north)

    def area_aoi(self, area: str) -> AOI:
        """The largest whole-patch AOI inside an area's extent (all dates), for one-click demos."""
        areas = self.areas()
        if area not in areas:
            raise OutsideCoverageError(f"unknown area {area!r}; available: {', '.join(areas)}")
        fp = areas[area]["footprint"]
        crs = f"EPSG:{utm_epsg(fp.centroid.x, fp.centroid.y)}"
        (xs, ys) = reproject_geometry(fp.exterior, "EPSG:4326", crs).coords.xy
        corners = sorted(zip(xs[:-1], ys[:-1]))  # 4 corners of a near-rectangle, left ones first
        left, right = corners[:2], corners[2:]
        x0 = lattice_ceil(max(x for x, _ in left))
        x1 = lattice_floor(min(x for x, _ in right))
        by_y = sorted(zip(ys[:-1], xs[:-1]))
        y0 = lattice_ceil(max(y for y, _ in by_y[:2]))
        y1 = lattice_floor(min(y for y, _ in by_y[2:]))
        eps = 0.01
        box = sg.box(x0 + eps, y0 + eps, x1 - eps, y1 - eps)
        return AOI(reproject_geometry(box, crs, "EPSG:4326"), name=area)
