"""Spectral indices of a signature (the ones Copernicus Browser users read first).

- NDVI = (B08 - B04) / (B08 + B04): vegetation vigour (high over crops in growth, forest).
- NDWI = (B03 - B08) / (B03 + B08) (McFeeters 1996): open water (positive over water).
- NDBI = (B11 - B08) / (B11 + B08): built-up and bare soil (positive over roofs, roads, bare ground).
"""

from __future__ import annotations

import math
from typing import Mapping

INDICES: dict[str, tuple[str, str]] = {"NDVI": ("B08", "B04"), "NDWI": ("B03", "B08"), "NDBI": ("B11", "B08")}


def normalised_difference(x: float, y: float) -> float:
    """(x - y) / (x + y), NaN where undefined."""
    total = x + y
    return (x - y) / total if math.isfinite(total) and total > 0 else float("nan")


def spectral_indices(signature: Mapping[str, float]) -> dict[str, float]:
    """NDVI, NDWI and NDBI of a band -> reflectance mapping (NaN where a band is missing or invalid)."""
    return {name: normalised_difference(signature.get(x, float("nan")), signature.get(y, float("nan")))
            for name, (x, y) in INDICES.items()}
