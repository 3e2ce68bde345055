"""10 m spectral change evidence between two Scenes on the same grid.

1. **Relative radiometric normalisation** of date B onto date A over the 13 bands, by orthogonal
   (total least squares) regression per band on *pseudo-invariant* pixels: pixels whose
   standardised two-date difference is among the smallest (``PIF_SHARE``), re-selected once
   after a first fit. Haze, sun angle and sensor gain/offset differences become a per-band
   gain and offset, so a date B that is ``gain x A + offset`` shows no change at all.
2. **Change magnitude** per pixel: the root mean square over the ``CHANGE_BANDS`` (the four
   10 m bands) of the difference ``A - B'`` divided by each band's noise on the invariant pixels
   (a chi-like statistic, 1 on average where nothing changed), on pixels valid and clear on both
   dates. Optionally (``tolerance_px``) tolerant of misregistration: each pixel is matched to the
   nearest of the other date's pixels within that radius, both ways, and the larger kept.
3. **Unsupervised threshold**: the classic change-vector rule, mean + ``CHANGE_SD`` standard
   deviations of the magnitude over the comparable pixels, never below ``MIN_THRESHOLD`` (twice
   the invariant pixels' noise), so that a pair without change finds none. No labels are
   needed. (On the OSCD change maps this rule ranked cells better than Otsu's threshold on the
   magnitude or its logarithm: docs/CHANGE_EVALUATION.md.)
4. Aggregation: the share of changed pixels among the valid pixels of each cell or patch
   (optionally soft: each pixel counts a sigmoid of its magnitude relative to the threshold).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lulc_core.grid import block_sums, share_in_blocks
from lulc_core.scene import Scene

PIF_SHARE = 0.3  # share of jointly valid pixels used as pseudo-invariant features
CHANGE_SD = 2.0  # threshold = mean + CHANGE_SD x standard deviation of the magnitude
MIN_THRESHOLD = 2.0  # a pixel is never "changed" below twice the invariant pixels' noise
NOISE_FLOOR_DN = 50.0  # per-band noise never counts as less than 0.5% reflectance
MIN_PIXELS = 200  # fewer jointly valid pixels than this: no normalisation, no evidence
SAMPLE_PIXELS = 200_000  # regression fits use at most this many pixels (the lowest pixel keys)
STRIP_ROWS = 256  # rows of pixels whose change magnitude is computed at once (bounds memory)
# Chosen on the OSCD change maps, leave one area out (bench/eval_change_evidence.py): the magnitude over the four 10 m bands ranked cells and patches
# better than over all 13 (the 20 m and 60 m bands blur edges into change); tolerating 1-2 px
# of misregistration (nearest pixel within the radius, both ways) ranked them worse, so it is off;
# a soft share (SOFTNESS > 0) ranked cells a little better.
CHANGE_BANDS: tuple[str, ...] | None = ("B02", "B03", "B04", "B08")  # None: all bands
TOLERANCE_PX = 0  # each pixel matched to the other date's nearest within this many pixels
SOFTNESS = 0.0  # > 0: share() = mean of sigmoid((magnitude / threshold - 1) / SOFTNESS); 0: share above threshold


@dataclass
class SpectralChange:
    """Per-pixel evidence: ``magnitude`` (H, W; NaN where not comparable), ``changed`` (bool),
    ``valid`` (both dates valid and clear), the threshold and B's per-band ``gain``/``offset`` and the
    per-band ``noise`` of the fit (None where too few pixels were comparable to fit)."""

    magnitude: np.ndarray
    changed: np.ndarray
    valid: np.ndarray
    threshold: float
    gain: np.ndarray
    offset: np.ndarray
    bands: tuple[str, ...]
    noise: np.ndarray | None = None

    @property
    def normalisation(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """(gain, offset, noise) of B onto A: what a second :func:`spectral_change` of the same two
        scenes (another tolerance) reuses instead of fitting again."""
        return None if self.noise is None else (self.gain, self.offset, self.noise)

    def share(self, block_px: int, softness: float | None = None) -> np.ndarray:
        """Share of changed pixels among valid ones in each block_px square (NaN where none valid).

        With ``softness`` > 0 (default ``SOFTNESS``, off) each pixel counts sigmoid((magnitude /
        threshold - 1) / softness) rather than 0 or 1: the same share where pixels are clearly
        above or below the threshold, and blocks with no pixel above it ranked by how near they come."""
        softness = SOFTNESS if softness is None else softness
        if softness <= 0 or not np.isfinite(self.threshold):
            return share_in_blocks(self.changed, self.valid, block_px)
        n = block_sums(self.valid, block_px)
        with np.errstate(over="ignore", invalid="ignore"):
            evidence = 1 / (1 + np.exp(-(self.magnitude / np.float32(self.threshold) - 1) / np.float32(softness)))
        evidence = np.where(self.valid, np.nan_to_num(evidence), np.float32(0))
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(n > 0, block_sums(evidence, block_px) / np.maximum(n, 1), np.nan)

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


def pixel_keys(transform, rows: tuple[int, int], width: int, seed: int = 0) -> np.ndarray:
    """A pseudo-random uint64 key per pixel of ``rows`` (half-open) of a grid, a hash (splitmix64) of
    the pixel's absolute position on its CRS's pixel lattice: the same pixel gets the same key
    whatever grid (a region's tile or one whole run) holds it."""
    col0 = int(round(transform.c / transform.a))
    row0 = int(round(transform.f / transform.e))
    r = (np.arange(*rows, dtype=np.int64) + row0 + 2**31).astype(np.uint64)
    c = (np.arange(width, dtype=np.int64) + col0 + 2**31).astype(np.uint64)
    z = (r[:, None] << np.uint64(32)) | c[None, :]
    z = z ^ np.uint64((seed * 0x9E3779B97F4A7C15) % 2**64)
    with np.errstate(over="ignore"):
        z = z + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def sample_pixels(valid: np.ndarray, transform, k: int = SAMPLE_PIXELS, seed: int = 0,
                  below: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(flat indices, keys) of the ``k`` pixels of ``valid`` with the smallest :func:`pixel_keys`
    (and keys under ``below``), ordered by key. The sample of a region is then its tiles' samples
    merged (the ``k`` smallest keys of all), exactly one whole run's."""
    h, w = valid.shape
    idx, keys = np.zeros(0, np.intp), np.zeros(0, np.uint64)
    for r0 in range(0, h, STRIP_ROWS):
        r1 = min(h, r0 + STRIP_ROWS)
        v = valid[r0:r1].ravel()
        kk = pixel_keys(transform, (r0, r1), w, seed).ravel()[v]
        ii = np.flatnonzero(v) + r0 * w
        if below is not None:
            keep = kk < np.uint64(below)
            kk, ii = kk[keep], ii[keep]
        idx, keys = np.concatenate([idx, ii]), np.concatenate([keys, kk])
        if keys.size > k:
            top = np.argpartition(keys, k - 1)[:k]
            idx, keys = idx[top], keys[top]
    order = np.argsort(keys, kind="stable")
    return idx[order], keys[order]


def _fit_normalisation(a: Scene, b: Scene, valid: np.ndarray, pif_share: float,
                       seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """B's per-band gain and offset onto A and the per-band noise, fitted on invariant pixels of
    the :func:`sample_pixels` sample."""
    nb = len(a.bands)
    fit_idx, _ = sample_pixels(valid, a.transform, SAMPLE_PIXELS, seed)
    xa = a.data.reshape(nb, -1)[:, fit_idx].astype(np.float64)
    xb = b.data.reshape(nb, -1)[:, fit_idx].astype(np.float64)
    return fit_normalisation_samples(xa, xb, pif_share)


def fit_normalisation_samples(xa: np.ndarray, xb: np.ndarray,
                              pif_share: float = PIF_SHARE) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """B's per-band gain and offset onto A and the per-band noise, fitted on the invariant pixels of
    a (bands, N) float64 sample of jointly valid pixels of each date (a region pools its tiles' samples)."""
    nb = xa.shape[0]
    # first guess of invariant pixels: each date standardised on its own
    za = (xa - xa.mean(1, keepdims=True)) / np.maximum(xa.std(1, keepdims=True), 1e-6)
    zb = (xb - xb.mean(1, keepdims=True)) / np.maximum(xb.std(1, keepdims=True), 1e-6)
    d = np.sqrt(((za - zb) ** 2).mean(0))
    gain, offset, noise = np.ones(nb), np.zeros(nb), np.ones(nb)
    for _ in range(2):
        pif = d <= np.quantile(d, pif_share)
        for k in range(nb):
            gain[k], offset[k] = orthogonal_fit(xa[k, pif], xb[k, pif])
        xb_n = (xb - offset[:, None]) / gain[:, None]
        noise = np.maximum((xa[:, pif] - xb_n[:, pif]).std(1), NOISE_FLOOR_DN)
        d = _standardised_distance(xa, xb_n, noise)
    return gain, offset, noise


def _standardised_rows(scene: Scene, band_idx: np.ndarray, valid: np.ndarray, rows: slice, pad: int,
                       offset: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """(bands, rows, width + 2 pad) float32 of (data - offset) / scale, NaN where not valid or padded."""
    data = scene.data[band_idx, rows].astype(np.float32)
    data -= offset[:, None, None]
    data /= scale[:, None, None]
    data[:, ~valid[rows]] = np.nan
    if pad:
        data = np.pad(data, ((0, 0), (0, 0), (pad, pad)), constant_values=np.nan)
    return data


def _nearest_distance(x: np.ndarray, y: np.ndarray, rows: int, width: int, radius: int) -> np.ndarray:
    """For each of ``rows`` x ``width`` pixels of ``x`` (halo of ``radius`` around them), the
    smallest RMS distance to ``y``'s pixels within ``radius`` (a square); inf where none is valid."""
    r = radius
    centre = x[:, r:r + rows, r:r + width]
    best = np.full((rows, width), np.inf, dtype=np.float32)
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            other = y[:, r + dy:r + dy + rows, r + dx:r + dx + width]
            d2 = np.square(centre - other).mean(axis=0)
            np.fmin(best, d2, out=best)  # NaN (a neighbour not valid) never wins
    return np.sqrt(best)


def change_magnitude(a: Scene, b: Scene, valid: np.ndarray, gain: np.ndarray, offset: np.ndarray,
                     noise: np.ndarray, tolerance_px: int, bands: tuple[str, ...] | None = None) -> np.ndarray:
    """Per-pixel noise-scaled RMS distance between A and normalised B (NaN where not comparable).

    With ``tolerance_px`` > 0, each date's pixel is compared with the other date's pixels within
    that many pixels and the nearest counts; the larger of the two ways (A to B, B to A) is kept,
    so a 1-2 px misregistration is not change, but a new object (absent from the other date's
    whole neighbourhood, either way) still is. Computed in strips of ``STRIP_ROWS`` rows."""
    h, w = valid.shape
    r = tolerance_px
    magnitude = np.full((h, w), np.nan, dtype=np.float32)
    names = list(a.bands)
    idx = np.array([names.index(n) for n in bands] if bands and set(bands) <= set(names) else range(len(names)))
    gain, offset, noise = gain[idx], offset[idx], noise[idx]
    zero = np.zeros(len(idx), dtype=np.float32)
    scale_b = (gain * noise).astype(np.float32)
    for r0 in range(0, h, STRIP_ROWS):
        r1 = min(h, r0 + STRIP_ROWS)
        ok = valid[r0:r1]
        if not ok.any():
            continue
        lo, hi = max(0, r0 - r), min(h, r1 + r)
        rows = slice(lo, hi)
        xa = _standardised_rows(a, idx, valid, rows, r, zero, noise.astype(np.float32))
        xb = _standardised_rows(b, idx, valid, rows, r, offset.astype(np.float32), scale_b)
        pad_rows = ((0, 0), (r - (r0 - lo), r - (hi - r1)), (0, 0))
        if r:
            xa = np.pad(xa, pad_rows, constant_values=np.nan)
            xb = np.pad(xb, pad_rows, constant_values=np.nan)
            mag = np.maximum(_nearest_distance(xa, xb, r1 - r0, w, r), _nearest_distance(xb, xa, r1 - r0, w, r))
        else:
            mag = np.sqrt(np.square(xa - xb).mean(axis=0))
        magnitude[r0:r1][ok] = mag[ok]
    return magnitude


def magnitude_sums(magnitude: np.ndarray) -> tuple[float, float]:
    """Sum and sum of squares of the finite values of an (H, W) magnitude, in float64, a strip of
    :data:`STRIP_ROWS` rows at a time (bounded memory); a region adds its tiles'."""
    total = total_sq = 0.0
    for r0 in range(0, magnitude.shape[0], STRIP_ROWS):
        m = magnitude[r0:r0 + STRIP_ROWS]
        m = m[np.isfinite(m)].astype(np.float64)
        total += float(m.sum())
        total_sq += float(np.square(m).sum())
    return total, total_sq


def threshold_from_sums(n: int, total: float, total_sq: float, change_sd: float = CHANGE_SD,
                        min_threshold: float = MIN_THRESHOLD) -> float:
    """The change threshold, mean + ``change_sd`` sd of the magnitude, from its count, sum and sum of
    squares over the comparable pixels (a region adds its tiles' sums); NaN under :data:`MIN_PIXELS`."""
    if n < MIN_PIXELS:
        return float("nan")
    mean = total / n
    std = float(np.sqrt(max(total_sq / n - mean * mean, 0.0)))
    return max(mean + change_sd * std, min_threshold)


def spectral_change(a: Scene, b: Scene, pif_share: float = PIF_SHARE, change_sd: float = CHANGE_SD,
                    min_threshold: float = MIN_THRESHOLD, tolerance_px: int = TOLERANCE_PX,
                    bands: tuple[str, ...] | None = CHANGE_BANDS, seed: int = 0,
                    normalisation: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> SpectralChange:
    """Normalise B onto A, measure per-pixel change and threshold it (see module docstring).

    ``normalisation``: the (gain, offset, noise) of an earlier call on the same two scenes
    (:attr:`SpectralChange.normalisation`), reused as is; None: fitted here."""
    if a.data.shape != b.data.shape or a.crs != b.crs or tuple(a.bands) != tuple(b.bands):
        raise ValueError("the two scenes must share bands and grid for spectral change")
    valid = a.valid & b.valid & ~a.cloud & ~b.cloud
    nb = len(a.bands)
    h, w = valid.shape
    n = int(valid.sum())
    if n < MIN_PIXELS:
        return SpectralChange(np.full((h, w), np.nan, dtype=np.float32), np.zeros((h, w), bool), valid,
                              float("nan"), np.ones(nb), np.zeros(nb), a.bands)
    if normalisation is None:
        gain, offset, noise = _fit_normalisation(a, b, valid, pif_share, seed)
    else:
        gain, offset, noise = (np.asarray(v, dtype=np.float64) for v in normalisation)
    magnitude = change_magnitude(a, b, valid, gain, offset, noise, tolerance_px, bands)
    threshold = threshold_from_sums(n, *magnitude_sums(magnitude), change_sd, min_threshold)
    with np.errstate(invalid="ignore"):
        changed = magnitude > threshold  # NaN (not comparable) is never changed
    return SpectralChange(magnitude, changed, valid, threshold, gain, offset, a.bands, noise)
