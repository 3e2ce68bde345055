"""Processing-unit estimates for Sentinel Hub Process API requests.

1 PU = a 512 x 512 px output of 3 input bands at 16 bit; cost scales with area and with
input bands / 3, doubles for FLOAT32 output, is multiplied by the number of acquisitions a
multi-temporal (ORBIT mosaicking, median composite) request reads, and is at least 0.005 PU.
"""

from __future__ import annotations

from lulc_core.grid import Grid

FETCH_INPUT_BANDS = 14  # 13 bands + CLM (dataMask is not charged as an input band)
#: The Process API's largest output side in pixels (larger AOIs are fetched in tiles).
PROCESS_API_MAX_PX = 2500


def request_pu(width: int, height: int, input_bands: int = FETCH_INPUT_BANDS, float32: bool = False) -> float:
    pu = (width * height) / (512 * 512) * (input_bands / 3) * (2 if float32 else 1)
    return max(pu, 0.005)


def estimate_fetch_pu(grid: Grid, max_px: int = PROCESS_API_MAX_PX, acquisitions: int = 1) -> float:
    """PU of one date's fetch of ``grid`` (split into requests of at most ``max_px`` a side); a
    window of several acquisitions is one median composite reading each of them."""
    return sum(max(request_pu(g.width, g.height) * max(acquisitions, 1), 0.005) for _, _, g in grid.split(max_px))
