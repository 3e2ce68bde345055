"""Sentinel-2 bands and the EuroSAT RGB input recipe.

Sentinel-2 Level-1C digital numbers (DN) are top-of-atmosphere reflectance x 10000.
EuroSAT RGB JPEGs are bands B04, B03, B02 with DN clipped to 0..2750 and scaled to 1..255,
0 meaning nodata. :func:`eurosat_rgb_recipe` applies exactly that recipe, so fetched imagery
and the training JPEGs land in the same value space. Display stretches are separate
(:func:`display_rgb`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np


@dataclass(frozen=True)
class Band:
    """A Sentinel-2 MSI band: name, centre wavelength (nm, S2A) and native resolution (m)."""

    name: str
    wavelength_nm: float
    resolution_m: int


S2_BANDS: tuple[Band, ...] = (
    Band("B01", 442.7, 60),
    Band("B02", 492.4, 10),
    Band("B03", 559.8, 10),
    Band("B04", 664.6, 10),
    Band("B05", 704.1, 20),
    Band("B06", 740.5, 20),
    Band("B07", 782.8, 20),
    Band("B08", 832.8, 10),
    Band("B8A", 864.7, 20),
    Band("B09", 945.1, 60),
    Band("B10", 1373.5, 60),
    Band("B11", 1613.7, 20),
    Band("B12", 2202.4, 20),
)
BANDS_BY_NAME: dict[str, Band] = {b.name: b for b in S2_BANDS}

#: EuroSAT's 13-band order (as in its GeoTIFFs and torchgeo): B01..B12, then B8A last.
EUROSAT_BAND_ORDER: tuple[str, ...] = (
    "B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B09", "B10", "B11", "B12", "B8A",
)
#: Bands of a Scene (every band of Sentinel-2 L1C, in EuroSAT order).
N_BANDS = len(EUROSAT_BAND_ORDER)
#: Bands of the RGB model, in channel order.
RGB_BANDS: tuple[str, ...] = ("B04", "B03", "B02")

#: EuroSAT RGB recipe: DN at or above this value map to 255.
EUROSAT_RGB_CLIP_DN = 2750.0


def band_indices(available: Sequence[str], wanted: Sequence[str]) -> list[int]:
    """Positions of ``wanted`` bands in ``available``; a clear error names any missing band."""
    missing = [b for b in wanted if b not in available]
    if missing:
        raise ValueError(
            f"missing band(s) {', '.join(missing)}: got {', '.join(available) or 'none'}, "
            f"need {', '.join(wanted)}"
        )
    return [list(available).index(b) for b in wanted]


def eurosat_rgb_recipe(dn: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """Map Level-1C DN to EuroSAT RGB values: clip to 0..2750, scale to 1..255, 0 = nodata.

    ``dn`` is any float or integer array of DN. Pixels where ``valid`` is False, where DN is 0
    (Sentinel-2's nodata) or not finite become 0. Returns uint8 of the same shape.
    """
    dn = np.asarray(dn, dtype=np.float32)
    out = np.clip(np.rint(dn * (255.0 / EUROSAT_RGB_CLIP_DN)), 1, 255)
    nodata = ~np.isfinite(dn) | (dn <= 0)
    if valid is not None:
        nodata |= ~np.asarray(valid, dtype=bool)
    out[nodata] = 0
    return out.astype(np.uint8)


def display_rgb(dn_rgb: np.ndarray, percentiles: tuple[float, float] = (2, 98),
                valid: np.ndarray | None = None) -> np.ndarray:
    """A display stretch for true colour (not the model input): (3, H, W) DN -> (H, W, 3) uint8.

    Each band is stretched linearly between the given percentiles of its valid pixels.
    """
    dn_rgb = np.asarray(dn_rgb, dtype=np.float32)
    if valid is None:
        valid = np.all(dn_rgb > 0, axis=0)
    out = np.zeros(dn_rgb.shape[1:] + (3,), dtype=np.uint8)
    if not valid.any():
        return out
    for i in range(3):
        lo, hi = np.percentile(dn_rgb[i][valid], percentiles)
        scaled = (dn_rgb[i] - lo) / max(hi - lo, 1e-6)
        out[..., i] = (np.clip(scaled, 0, 1) * 255).astype(np.uint8)
    out[~valid] = 0
    return out


def eurosat_class_signatures() -> dict[str, dict[str, float]]:
    """Mean TOA reflectance of each EuroSAT class per band (from the 13-band EuroSAT files)."""
    import json
    from pathlib import Path

    data = json.loads((Path(__file__).parent / "data" / "eurosat_class_signatures.json").read_text())
    return {cls: dict(zip(data["bands"], values)) for cls, values in data["mean"].items()}
