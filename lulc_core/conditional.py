"""Conditional 10 m change: is date B's pixel what its kind of surface on date A would become?

The plain spectral change (:mod:`lulc_core.spectral`) compares date A with date B normalised by one
gain and offset per band over the whole scene. Seasons do not move every surface alike (fields green
up or are ploughed, water turns turbid, shadows lengthen in winter streets) while that one line fits
them all at once, so their pixels look changed. Here the change is measured against what the pixel's
own kind of surface did:

1. **Strata**: date A's pixels are grouped into :data:`STRATA` spectral strata (k-means on A's 13
   bands, each standardised over the sample).
2. **Prediction**: in each stratum, date B's four 10 m bands (:data:`~lulc_core.spectral.CHANGE_BANDS`)
   are predicted from A's 13 bands by least squares; a pixel's change is the RMS over the four bands
   of its residual divided by the stratum's robust residual sd (never under
   :data:`~lulc_core.spectral.NOISE_FLOOR_DN`).
3. **Both ways**: the same from B to A (B's strata), the larger of the two kept, so a new object and
   a vanished one count alike.
4. **Threshold** as the plain change: mean + 2 sd of the magnitude over the comparable pixels,
   never below 2 (twice the strata's noise).

A change that a whole stratum shares (a season) is predicted and is not change; a pixel unlike its
stratum's fate (a building in a field, a cleared plot in a town) is. No change label is used. The
fit uses the plain change's sample (:func:`~lulc_core.spectral.sample_pixels`: the lowest pixel
keys), so a region (which pools its tiles' samples) computes exactly one run's model.

Chosen on the OSCD change maps, leave one area out (``bench/eval_change_mad.py``): its cell share as
a 7th input of the counted-change model raised the held-out AUROC of the cells' ranking from 0.885
to 0.903-0.906 (16 strata, three k-means seeds); alone it ranks cells about as the plain share but
differently per area: it adds what the plain share misses. In the product (``bench/eval_change_oscd.py``):
change score AUROC 0.883 -> 0.903, counted-change F1 0.513 -> 0.534 (docs/CHANGE_EVALUATION.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from lulc_core.grid import share_in_blocks
from lulc_core.scene import Scene
from lulc_core.spectral import (CHANGE_BANDS, CHANGE_SD, MIN_PIXELS, MIN_THRESHOLD, NOISE_FLOOR_DN, SAMPLE_PIXELS,
                                magnitude_sums, sample_pixels, threshold_from_sums)

STRATA = 16  # spectral strata (k-means clusters) per date
KMEANS_INIT_PIXELS = 20_000  # k-means++ seeds from the sample's first pixels (lowest keys: deterministic)
KMEANS_PIXELS = 50_000  # Lloyd's iterations on the sample's first pixels (the fits use the whole sample)
KMEANS_ITERATIONS = 20
MIN_STRATUM_PIXELS = 200  # a stratum with fewer sample pixels uses the whole sample's fit
CHI2_1_MEDIAN = 0.4549  # median of chi-square with one degree of freedom: robust sd from a median
BLOCK_PIXELS = 65_536  # pixels predicted at once (bounds memory)


@dataclass(frozen=True)
class ConditionalFit:
    """One direction: the target date's :data:`CHANGE_BANDS` (DN) predicted from the source date's
    bands, per stratum of the source. ``mean`` / ``scale`` standardise the source's bands,
    ``centres`` (strata, bands) are the strata in those units, ``coef`` (strata, 1 + bands, targets)
    the least-squares fits (intercept first), ``noise`` (strata, targets) the residuals' robust sd."""

    mean: np.ndarray
    scale: np.ndarray
    centres: np.ndarray
    coef: np.ndarray
    noise: np.ndarray

    def stratum(self, z: np.ndarray) -> np.ndarray:
        """Nearest stratum of each column of standardised (bands, N) ``z``."""
        return nearest(self.centres, z)

    def magnitude(self, source: np.ndarray, target: np.ndarray) -> np.ndarray:
        """RMS over the targets of the noise-scaled residual, for (bands, N) ``source`` and
        (targets, N) ``target`` in DN (every stratum's prediction at once, then each pixel's own)."""
        z = (source - self.mean.astype(np.float32)[:, None]) * (1 / self.scale).astype(np.float32)[:, None]
        label = self.stratum(z)
        k, nx, nt = self.coef.shape
        coef = self.coef.astype(np.float32)
        pred = (z.T @ coef[:, 1:].transpose(1, 0, 2).reshape(nx - 1, k * nt)).reshape(-1, k, nt)
        pred = np.take_along_axis(pred, label[:, None, None], 1)[:, 0] + coef[label, 0]
        r = (target.T - pred) / self.noise.astype(np.float32)[label]
        return np.sqrt(np.square(r).mean(1))

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k).tolist() for k in ("mean", "scale", "centres", "coef", "noise")}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "ConditionalFit":
        return cls(*(np.asarray(d[k], dtype=np.float64) for k in ("mean", "scale", "centres", "coef", "noise")))


def nearest(centres: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Index of the nearest of (k, bands) ``centres`` for each column of (bands, N) ``z``."""
    c = centres.astype(z.dtype)
    return np.argmin((c * c).sum(1)[None] - 2 * (z.T @ c.T), axis=1)


def _kmeans(z: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """(k, bands) centres of standardised (bands, N) ``z``: k-means++ on the first
    :data:`KMEANS_INIT_PIXELS` columns, then Lloyd's iterations on the first :data:`KMEANS_PIXELS`."""
    rng = np.random.default_rng(seed)
    z = z[:, :KMEANS_PIXELS]
    init = z[:, :KMEANS_INIT_PIXELS].T
    k = min(k, len(init))
    centres = init[[int(rng.integers(len(init)))]]
    d2 = ((init - centres[0]) ** 2).sum(1)
    for _ in range(k - 1):
        total = d2.sum()
        pick = int(rng.choice(len(init), p=d2 / total)) if total > 0 else int(rng.integers(len(init)))
        centres = np.vstack([centres, init[pick]])
        d2 = np.minimum(d2, ((init - init[pick]) ** 2).sum(1))
    for _ in range(KMEANS_ITERATIONS):
        label = nearest(centres, z)
        onehot = np.zeros((z.shape[1], len(centres)))
        onehot[np.arange(z.shape[1]), label] = 1.0
        count, sums = onehot.sum(0), (z @ onehot).T
        new = np.where(count[:, None] > 0, sums / np.maximum(count, 1)[:, None], centres)
        if np.allclose(new, centres):
            break
        centres = new
    return centres


def _fit_direction(source: np.ndarray, target: np.ndarray, strata: int, seed: int) -> ConditionalFit:
    """The fit of (targets, N) ``target`` on (bands, N) ``source`` (float64 DN, sample in key order)."""
    mean, scale = source.mean(1), np.maximum(source.std(1), 1.0)
    z = (source - mean[:, None]) / scale[:, None]
    centres = _kmeans(z, strata, seed)
    label = nearest(centres, z)
    order = np.argsort(label, kind="stable")
    x = np.vstack([np.ones((1, z.shape[1])), z])[:, order].T  # pixels grouped by stratum
    y = target[:, order].T
    bounds = np.searchsorted(label[order], np.arange(len(centres) + 1))

    def fit(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        gram = x.T @ x
        coef = np.linalg.solve(gram + 1e-9 * np.trace(gram) * np.eye(len(gram)), x.T @ y)  # least squares
        r = y - x @ coef
        return coef, np.maximum(np.sqrt(np.median(r * r, 0) / CHI2_1_MEDIAN), NOISE_FLOOR_DN)

    everything = fit(x, y)
    coefs, noises = [], []
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        c, n = fit(x[lo:hi], y[lo:hi]) if hi - lo >= MIN_STRATUM_PIXELS else everything
        coefs.append(c)
        noises.append(n)
    return ConditionalFit(mean, scale, centres, np.stack(coefs), np.stack(noises))


@dataclass(frozen=True)
class ConditionalModel:
    """Both directions (A to B, B to A) over ``bands`` (the scenes' band order), predicting ``targets``."""

    a_to_b: ConditionalFit
    b_to_a: ConditionalFit
    bands: tuple[str, ...]
    targets: tuple[str, ...] = CHANGE_BANDS

    def to_json(self) -> dict[str, Any]:
        return {"a_to_b": self.a_to_b.to_json(), "b_to_a": self.b_to_a.to_json(), "bands": list(self.bands),
                "targets": list(self.targets)}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "ConditionalModel":
        return cls(ConditionalFit.from_json(d["a_to_b"]), ConditionalFit.from_json(d["b_to_a"]), tuple(d["bands"]),
                   tuple(d["targets"]))


def fit_conditional(xa: np.ndarray, xb: np.ndarray, bands: tuple[str, ...], strata: int = STRATA,
                    seed: int = 0) -> ConditionalModel:
    """The model fitted on a (bands, N) sample of jointly valid pixels of each date (DN, in pixel-key
    order: a region pools its tiles' samples, one run samples its own)."""
    xa, xb = np.asarray(xa, dtype=np.float64), np.asarray(xb, dtype=np.float64)
    t = [list(bands).index(n) for n in CHANGE_BANDS]
    return ConditionalModel(_fit_direction(xa, xb[t], strata, seed), _fit_direction(xb, xa[t], strata, seed),
                            tuple(bands))


def conditional_magnitude(a: np.ndarray, b: np.ndarray, bands: tuple[str, ...], valid: np.ndarray,
                          model: ConditionalModel) -> np.ndarray:
    """Per-pixel conditional change (H, W; NaN where not comparable) of (bands, H, W) DN arrays."""
    if tuple(bands) != model.bands:
        raise ValueError(f"the model was fitted on bands {model.bands}, not {tuple(bands)}")
    t = [list(bands).index(n) for n in model.targets]
    h, w = valid.shape
    out = np.full(h * w, np.nan, dtype=np.float32)
    flat = np.flatnonzero(valid.ravel())
    a2, b2 = a.reshape(len(bands), -1), b.reshape(len(bands), -1)
    for s in range(0, len(flat), BLOCK_PIXELS):
        i = flat[s:s + BLOCK_PIXELS]
        xa, xb = a2[:, i].astype(np.float32), b2[:, i].astype(np.float32)
        out[i] = np.maximum(model.a_to_b.magnitude(xa, xb[t]), model.b_to_a.magnitude(xb, xa[t]))
    return out.reshape(h, w)


@dataclass
class ConditionalChange:
    """Per-pixel conditional change: ``magnitude`` (NaN where not comparable), ``changed``, ``valid``
    (both dates valid and clear), the ``threshold`` and the ``model`` (None: too few comparable pixels)."""

    magnitude: np.ndarray
    changed: np.ndarray
    valid: np.ndarray
    threshold: float
    model: ConditionalModel | None

    def share(self, block_px: int) -> np.ndarray:
        """Share of changed pixels among valid ones in each block_px square (NaN where none valid)."""
        return share_in_blocks(self.changed, self.valid, block_px)


def conditional_change(a: Scene, b: Scene, model: ConditionalModel | None = None, seed: int = 0,
                       change_sd: float = CHANGE_SD, min_threshold: float = MIN_THRESHOLD) -> ConditionalChange:
    """Fit (unless ``model`` is given) and measure the conditional change of two scenes on one grid."""
    if a.data.shape != b.data.shape or tuple(a.bands) != tuple(b.bands):
        raise ValueError("the two scenes must share bands and grid for conditional change")
    valid = a.valid & b.valid & ~a.cloud & ~b.cloud
    n = int(valid.sum())
    if n < MIN_PIXELS:
        return ConditionalChange(np.full(valid.shape, np.nan, np.float32), np.zeros(valid.shape, bool), valid,
                                 float("nan"), None)
    if model is None:
        idx, _ = sample_pixels(valid, a.transform, SAMPLE_PIXELS, seed)
        nb = len(a.bands)
        model = fit_conditional(a.data.reshape(nb, -1)[:, idx], b.data.reshape(nb, -1)[:, idx], tuple(a.bands))
    magnitude = conditional_magnitude(a.data, b.data, tuple(a.bands), valid, model)
    threshold = threshold_from_sums(n, *magnitude_sums(magnitude), change_sd, min_threshold)
    with np.errstate(invalid="ignore"):
        changed = magnitude > threshold
    return ConditionalChange(magnitude, changed, valid, threshold, model)
