"""10 m spectral change evidence between two Scenes on the same grid.

1. **Relative radiometric normalisation** of date B onto date A over the 13 bands, by orthogonal
   (total least squares) regression per band on *pseudo-invariant* pixels: pixels whose
   standardised two-date difference is among the smallest (``PIF_SHARE``), re-selected once
   after a first fit. Haze, sun angle and sensor gain/offset differences become a per-band
   gain and offset, so a date B that is ``gain x A + offset`` shows no change at all.
2. **Change magnitude** per pixel: the root mean square over bands of the difference
   ``A - B'`` divided by each band's noise on the invariant pixels (a chi-like statistic, 1 on
   average where nothing changed), on pixels valid and clear on both dates.
3. **Unsupervised threshold**: the classic change-vector rule, mean + ``CHANGE_SD`` standard
   deviations of the magnitude over the comparable pixels, never below ``MIN_THRESHOLD`` (twice
   the invariant pixels' noise), so that a pair without change finds none. No labels are
   needed. (On the OSCD change maps this rule ranked cells better than Otsu's threshold on the
   magnitude or its logarithm: docs/CHANGE_EVALUATION.md.)
4. Aggregation: the share of changed pixels among the valid pixels of each cell or patch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lulc_core.grid import share_in_blocks
from lulc_core.scene import Scene

PIF_SHARE = 0.3  # share of jointly valid pixels used as pseudo-invariant features
CHANGE_SD = 2.0  # threshold = mean + CHANGE_SD x standard deviation of the magnitude
MIN_THRESHOLD = 2.0  # a pixel is never "changed" below twice the invariant pixels' noise
NOISE_FLOOR_DN = 50.0  # per-band noise never counts as less than 0.5% reflectance
MIN_PIXELS = 200  # fewer jointly valid pixels than this: no normalisation, no evidence
SAMPLE_PIXELS = 200_000  # regression fits use at most this many pixels (random, seeded)
STRIP_ROWS = 256  # rows of pixels whose change magnitude is computed at once (bounds memory)


@dataclass
class SpectralChange:
    """Per-pixel evidence: ``magnitude`` (H, W; NaN where not comparable), ``changed`` (bool),
    ``valid`` (both dates valid and clear), the threshold and B's per-band ``gain``/``offset``."""

    magnitude: np.ndarray
    changed: np.ndarray
    valid: np.ndarray
    threshold: float
    gain: np.ndarray
    offset: np.ndarray
    bands: tuple[str, ...]

    def share(self, block_px: int) -> np.ndarray:
        """Share of changed pixels among valid ones in each block_px square (NaN where none valid)."""
        return share_in_blocks(self.changed, self.valid, block_px)

    @property
    def changed_share(self) -> float:
        return float(self.changed[self.valid].mean()) if self.valid.any() else float("nan")


def orthogonal_fit(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Slope and intercept of the total-least-squares line y = slope * x + intercept."""
    mx, my = x.mean(), y.mean()
    sxx, syy = ((x - mx) ** 2).mean(), ((y - my) ** 2).mean()
    sxy = ((x - mx) * (y - my)).mean()
    if abs(sxy) < 1e-12:
        slope = np.sqrt(syy / sxx) if sxx > 0 else 1.0
    else:
        slope = (syy - sxx + np.sqrt((syy - sxx) ** 2 + 4 * sxy ** 2)) / (2 * sxy)
    if not np.isfinite(slope) or slope <= 0:
        slope = np.sqrt(syy / sxx) if sxx > 0 and syy > 0 else 1.0
    return float(slope), float(my - slope * mx)


def _standardised_distance(a: np.ndarray, b: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """RMS over bands of (a - b) / scale for (bands, N) arrays."""
    return np.sqrt((((a - b) / scale[:, None]) ** 2).mean(axis=0))


def spectral_change(a: Scene, b: Scene, pif_share: float = PIF_SHARE, change_sd: float = CHANGE_SD,
                    min_threshold: float = MIN_THRESHOLD, seed: int = 0) -> SpectralChange:
    """Normalise B onto A, measure per-pixel change and threshold it (see module docstring)."""
    if a.data.shape != b.data.shape or a.crs != b.crs or tuple(a.bands) != tuple(b.bands):
        raise ValueError("the two scenes must share bands and grid for spectral change")
    valid = a.valid & b.valid & ~a.cloud & ~b.cloud
    nb = len(a.bands)
    h, w = valid.shape
    magnitude = np.full((h, w), np.nan, dtype=np.float32)
    gain, offset = np.ones(nb), np.zeros(nb)
    idx = np.flatnonzero(valid.ravel())
    if idx.size < MIN_PIXELS:
        return SpectralChange(magnitude, np.zeros((h, w), bool), valid, float("nan"), gain, offset, a.bands)
    rng = np.random.default_rng(seed)
    fit_idx = idx if idx.size <= SAMPLE_PIXELS else np.sort(rng.choice(idx, SAMPLE_PIXELS, replace=False))
    n = float(idx.size)
    del idx  # 8 bytes a pixel: not kept while the magnitude is computed
    xa = a.data.reshape(nb, -1)[:, fit_idx].astype(np.float64)
    xb = b.data.reshape(nb, -1)[:, fit_idx].astype(np.float64)
    # first guess of invariant pixels: each date standardised on its own
    za = (xa - xa.mean(1, keepdims=True)) / np.maximum(xa.std(1, keepdims=True), 1e-6)
    zb = (xb - xb.mean(1, keepdims=True)) / np.maximum(xb.std(1, keepdims=True), 1e-6)
    d = np.sqrt(((za - zb) ** 2).mean(0))
    noise = np.ones(nb)
    for _ in range(2):
        pif = d <= np.quantile(d, pif_share)
        for k in range(nb):
            g, o = orthogonal_fit(xa[k, pif], xb[k, pif])
            gain[k], offset[k] = g, o
        xb_n = (xb - offset[:, None]) / gain[:, None]
        noise = np.maximum((xa[:, pif] - xb_n[:, pif]).std(1), NOISE_FLOOR_DN)
        d = _standardised_distance(xa, xb_n, noise)
    # magnitude in strips of rows, so temporaries stay small whatever the scene's size
    g32, o32, n32 = (v.astype(np.float32)[:, None] for v in (gain, offset, noise))
    total = total_sq = 0.0
    for r0 in range(0, h, STRIP_ROWS):
        sl = slice(r0, min(h, r0 + STRIP_ROWS))
        ok = valid[sl]
        if not ok.any():
            continue
        da = a.data[:, sl][:, ok].astype(np.float32)
        db = (b.data[:, sl][:, ok].astype(np.float32) - o32) / g32
        mag = _standardised_distance(da, db, n32[:, 0])
        magnitude[sl][ok] = mag
        total += float(mag.sum(dtype=np.float64))
        total_sq += float(np.square(mag, dtype=np.float64).sum())
    mean = total / n
    std = float(np.sqrt(max(total_sq / n - mean * mean, 0.0)))
    threshold = max(mean + change_sd * std, min_threshold)
    with np.errstate(invalid="ignore"):
        changed = magnitude > threshold  # NaN (not comparable) is never changed
    return SpectralChange(magnitude, changed, valid, threshold, gain, offset, a.bands)
