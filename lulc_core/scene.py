"""Acquisitions, date windows and Scenes (13 Level-1C bands in DN on an AOI's 10 m UTM grid)."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import rasterio
from affine import Affine

from lulc_core.grid import Grid
from lulc_core.bands import EUROSAT_BAND_ORDER, band_indices
from lulc_core.collection import DEFAULT_COLLECTION
from lulc_core.errors import DateWindowError

@dataclass(frozen=True)
class DateWindow:
    """An inclusive window of days, written ``YYYY-MM-DD/YYYY-MM-DD`` (a single day repeats it)."""

    start: dt.date
    end: dt.date

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise DateWindowError(f"the date window ends ({self.end}) before it starts ({self.start}); "
                                  "swap the dates")

    @classmethod
    def parse(cls, text: str) -> "DateWindow":
        parts = text.strip().split("/")
        if len(parts) not in (1, 2):
            raise DateWindowError(f"bad date window {text!r}; use YYYY-MM-DD/YYYY-MM-DD")
        try:
            days = [dt.date.fromisoformat(p.strip()) for p in parts]
        except ValueError:
            raise DateWindowError(f"bad date in {text!r}; use YYYY-MM-DD/YYYY-MM-DD") from None
        return cls(days[0], days[-1])

    def contains(self, day: dt.date) -> bool:
        return self.start <= day <= self.end

    def __str__(self) -> str:
        return f"{self.start.isoformat()}/{self.end.isoformat()}"

    def to_rfc3339(self) -> tuple[str, str]:
        return f"{self.start.isoformat()}T00:00:00Z", f"{self.end.isoformat()}T23:59:59Z"


def check_window_order(a: DateWindow, b: DateWindow) -> None:
    """Date A must not start after date B: reversed dates get a clear message."""
    if b.end < a.start:
        raise DateWindowError(f"date B ({b}) is before date A ({a}); swap them so that A is the earlier")


@dataclass(frozen=True)
class Acquisition:
    """A scene found by search."""

    datetime: dt.datetime
    cloud_cover: float
    tile_id: str
    provider: str
    id: str = ""

    @property
    def date(self) -> dt.date:
        return self.datetime.date()

    def to_dict(self) -> dict[str, Any]:
        return {"datetime": self.datetime.isoformat(), "cloud_cover": self.cloud_cover,
                "tile_id": self.tile_id, "provider": self.provider, "id": self.id}


@dataclass
class Scene:
    """13 Level-1C bands in DN on a 10 m UTM grid, with valid-data and cloud masks.

    ``data`` has shape (bands, height, width), uint16, bands named in ``bands`` (EuroSAT order,
    B8A last). ``valid`` and ``cloud`` are boolean (height, width).
    """

    data: np.ndarray
    bands: tuple[str, ...]
    valid: np.ndarray
    cloud: np.ndarray
    crs: str
    transform: Affine
    dates: tuple[dt.date, ...]
    provider: str
    collection: str = DEFAULT_COLLECTION.value
    processing_units: float = 0.0
    acquisitions: tuple[Acquisition, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.data.ndim != 3 or len(self.bands) != self.data.shape[0]:
            raise ValueError(f"data {self.data.shape} does not match bands {self.bands}")
        if self.valid.shape != self.data.shape[1:] or self.cloud.shape != self.data.shape[1:]:
            raise ValueError("masks must have the image's height and width")

    @property
    def height(self) -> int:
        return self.data.shape[1]

    @property
    def width(self) -> int:
        return self.data.shape[2]

    def band(self, name: str) -> np.ndarray:
        return self.data[band_indices(self.bands, [name])[0]]

    def select(self, names: Sequence[str]) -> np.ndarray:
        return self.data[band_indices(self.bands, names)]

    def matches(self, grid: Grid) -> bool:
        return (self.crs == grid.crs and self.width == grid.width and self.height == grid.height
                and np.allclose(list(self.transform)[:6], list(grid.transform)[:6]))

    @property
    def composite(self) -> bool:
        """True for a per-pixel composite of several acquisition dates (a date window's median of
        its clear observations), False for a single acquisition. Survives the disk cache and
        GeoTIFF round trips, as ``dates`` does."""
        return len(set(self.dates)) > 1

    @property
    def label(self) -> str:
        days = ", ".join(d.isoformat() for d in self.dates) or "unknown date"
        return f"{days} ({self.provider}, {self.collection})"

    # -- GeoTIFF --------------------------------------------------------------------------
    def to_geotiff(self, path: str | Path) -> tuple[Path, Path]:
        """Write the bands (band descriptions = names) and, alongside, ``<stem>.masks.tif``."""
        path = Path(path)
        masks = path.with_name(path.stem + ".masks.tif")
        profile = dict(driver="GTiff", width=self.width, height=self.height, crs=self.crs,
                       transform=self.transform, compress="deflate", predictor=2, tiled=True,
                       blockxsize=256, blockysize=256)
        tags = {"provider": self.provider, "collection": self.collection,
                "dates": ",".join(d.isoformat() for d in self.dates),
                "processing_units": str(self.processing_units),
                "acquisitions": json.dumps([a.to_dict() for a in self.acquisitions])}
        if self.width < 256 or self.height < 256:
            profile.update(tiled=False, blockxsize=None, blockysize=None)
            profile = {k: v for k, v in profile.items() if v is not None}
        with rasterio.open(path, "w", count=len(self.bands), dtype="uint16", nodata=0, **profile) as ds:
            ds.write(self.data.astype(np.uint16, copy=False))
            for i, b in enumerate(self.bands, 1):
                ds.set_band_description(i, b)
            ds.update_tags(**tags)
        with rasterio.open(masks, "w", count=2, dtype="uint8", **profile) as ds:
            ds.write(np.stack([self.valid, self.cloud]).astype(np.uint8))
            ds.set_band_description(1, "valid")
            ds.set_band_description(2, "cloud")
        return path, masks

    @classmethod
    def from_geotiff(cls, path: str | Path) -> "Scene":
        """Read a Scene written by :meth:`to_geotiff`."""
        path = Path(path)
        with rasterio.open(path) as ds:
            data = ds.read()
            bands = tuple(ds.descriptions)
            tags = ds.tags()
            crs, transform = ds.crs.to_string(), ds.transform
        if not all(bands):
            bands = EUROSAT_BAND_ORDER
        masks = path.with_name(path.stem + ".masks.tif")
        if masks.exists():
            with rasterio.open(masks) as ds:
                valid, cloud = ds.read(1).astype(bool), ds.read(2).astype(bool)
        else:
            valid, cloud = np.all(data > 0, axis=0), np.zeros(data.shape[1:], bool)
        acq = tuple(Acquisition(dt.datetime.fromisoformat(a["datetime"]), a["cloud_cover"], a["tile_id"],
                                a["provider"], a.get("id", ""))
                    for a in json.loads(tags.get("acquisitions", "[]")))
        dates = tuple(dt.date.fromisoformat(d) for d in tags.get("dates", "").split(",") if d)
        return cls(data, bands, valid, cloud, crs, transform, dates, tags.get("provider", "file"),
                   tags.get("collection", DEFAULT_COLLECTION.value), float(tags.get("processing_units", 0)), acq)
