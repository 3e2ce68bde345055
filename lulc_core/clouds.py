"""A simple Level-1C cloud test for sources that come without a cloud mask (no s2cloudless here)."""

from __future__ import annotations

import numpy as np

#: The bands :func:`bright_cloud_mask` reads, in the order of its arguments.
CLOUD_TEST_BANDS = ("B02", "B04", "B11", "B10")


def bright_cloud_mask(b02: np.ndarray, b04: np.ndarray, b11: np.ndarray, b10: np.ndarray) -> np.ndarray:
    """Cloud where the pixel is bright and white in the visible, or where thin cirrus shows.

    Bright and white: B02 and B04 DN > 3000, and bright in SWIR (B11 > 2000, which separates
    clouds from water and most shadows); cirrus: B10 exceeds 150 DN (0.015 reflectance). Snow
    also trips it, which is wanted: snow is not a EuroSAT class.
    """
    return ((b02 > 3000) & (b04 > 3000) & (b11 > 2000)) | (b10 > 150)


def cloud_percent(b02: np.ndarray, b04: np.ndarray, b11: np.ndarray, b10: np.ndarray) -> float:
    """Cloud % (by :func:`bright_cloud_mask`, 2 decimals) of the pixels with data (B02 > 0); 100 without any."""
    valid = b02 > 0
    if not valid.any():
        return 100.0
    cloud = bright_cloud_mask(b02, b04, b11, b10)
    return round(100.0 * float(cloud[valid].mean()), 2)
