"""The 160 m cells of a class map: which are usable, and what a cell's window holds.

A cell is classified only when it is usable: at least :data:`MIN_AOI_SHARE` of it inside the AOI
(thinner slivers along a rotated edge are left out), at most :data:`MAX_NODATA_SHARE` of the
pixels of its context without data and at most :data:`MAX_CLOUD_SHARE` of them cloudy (shares
are fractions, 0..1). Others are shown as what they are (outside, nodata, cloudy), never as land
cover.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np

from lulc_core.grid import WINDOW_PX
from lulc_core.scene import Scene

MAX_NODATA_SHARE = 0.10  # share of pixels without data above which a cell is "nodata"
MAX_CLOUD_SHARE = 0.10  # share of cloudy pixels above which a cell is "cloudy"
MIN_AOI_SHARE = 0.01  # cells with less of their area inside the AOI are slivers: "outside"


class CellStatus(IntEnum):
    """Why a cell of one date is (not) classified; the values are those stored in the exports."""

    OK = 0
    OUTSIDE = 1
    NODATA = 2
    CLOUDY = 3


STATUS_NAMES = {s.value: s.name.lower() for s in CellStatus}


def aoi_share(fractions: np.ndarray) -> np.ndarray:
    """Each cell's share inside the AOI, slivers under :data:`MIN_AOI_SHARE` counted as 0."""
    return np.where(fractions < MIN_AOI_SHARE, 0.0, fractions)


def cell_status(valid_share: np.ndarray, cloud_share: np.ndarray, inside_share: np.ndarray,
                max_nodata_share: float = MAX_NODATA_SHARE,
                max_cloud_share: float = MAX_CLOUD_SHARE) -> np.ndarray:
    """The :class:`CellStatus` of every cell (int8) from its shares of valid, cloudy and inside pixels."""
    status = np.full(np.shape(valid_share), CellStatus.OK, dtype=np.int8)
    status[cloud_share > max_cloud_share] = CellStatus.CLOUDY
    status[valid_share < 1 - max_nodata_share] = CellStatus.NODATA
    status[inside_share <= 0] = CellStatus.OUTSIDE
    return status


def window_signature(scene: Scene, y0: int, x0: int, size: int = WINDOW_PX) -> dict[str, float]:
    """Mean top-of-atmosphere reflectance (DN / 10000) of each band over a window's valid pixels."""
    window = (slice(None), slice(y0, y0 + size), slice(x0, x0 + size))
    data = scene.data[window].astype(np.float64)
    valid = scene.valid[window[1:]]
    if not valid.any():
        return {b: float("nan") for b in scene.bands}
    return {b: float(data[i][valid].mean() / 10_000) for i, b in enumerate(scene.bands)}


def classify_window(classifier, scene: Scene, y0: int, x0: int, size: int = WINDOW_PX,
                    max_nodata_share: float = MAX_NODATA_SHARE) -> np.ndarray | None:
    """Per-window classifier probabilities of one window (None when it has too little data)."""
    valid = scene.valid[y0:y0 + size, x0:x0 + size]
    if valid.mean() < 1 - max_nodata_share:
        return None
    return classifier.predict_proba(scene.data[None, :, y0:y0 + size, x0:x0 + size], scene.bands)[0]
