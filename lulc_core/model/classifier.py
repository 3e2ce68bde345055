"""The classifier: Sentinel-2 L1C DN patches in, calibrated class probabilities out.

Input contract (checked on every call):
- ``patches``: array (N, bands, 64, 64) of Level-1C digital numbers (reflectance x 10000),
  finite, any numeric dtype; 0 is Sentinel-2 nodata.
- ``bands``: the band name of every channel, e.g. EuroSAT's 13-band order
  ``B01..B12, B8A`` or just ``("B04", "B03", "B02")``. Bands are picked by name, never by
  position, so any order or superset works.
The RGB model applies the EuroSAT recipe (:func:`lulc_core.bands.eurosat_rgb_recipe`), then
the normalisation stored with the weights, then the ResNet, then temperature scaling.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from lulc_core.bands import band_indices, eurosat_rgb_recipe
from lulc_core.model.calibration import softmax
from lulc_core.model.transforms import dihedral, normalise
from lulc_core.model.weights import DEFAULT_WEIGHTS, WeightsMetadata, load_weights

PATCH_SIZE = 64


class InputError(ValueError):
    """Patches that do not meet the classifier's input contract."""


class Classifier:
    """A EuroSAT ResNet loaded once; thread-safe :meth:`predict_proba` on DN patches."""

    def __init__(self, weights: str | Path = DEFAULT_WEIGHTS, threads: int | None = None,
                 tta: bool | None = None, batch_size: int = 256) -> None:
        self.model, self.meta = load_weights(Path(weights))
        self.model = self.model.to(memory_format=torch.channels_last)
        self.tta = self.meta.tta_default if tta is None else tta
        self.batch_size = batch_size
        self.threads = threads
        self._lock = threading.Lock()
        self.calls = 0  # number of predict calls, for tests that check caching

    @property
    def class_names(self) -> list[str]:
        return list(self.meta.class_names)

    @property
    def bands(self) -> list[str]:
        return list(self.meta.bands)

    @property
    def temperature(self) -> float:
        return self.meta.temperature_tta if self.tta else self.meta.temperature

    def prepare(self, patches: np.ndarray, bands: Sequence[str]) -> np.ndarray:
        """Validate DN patches and apply the recipe: returns uint8 (N, model bands, 64, 64)."""
        arr = np.asarray(patches)
        if arr.ndim == 3:
            arr = arr[None]
        if arr.ndim != 4 or arr.shape[2:] != (PATCH_SIZE, PATCH_SIZE):
            raise InputError(f"patches must have shape (N, bands, {PATCH_SIZE}, {PATCH_SIZE}); got {arr.shape}")
        bands = list(bands)
        if len(bands) != arr.shape[1]:
            raise InputError(f"{arr.shape[1]} channels but {len(bands)} band names ({', '.join(bands)})")
        if len(set(bands)) != len(bands):
            raise InputError(f"duplicate band names in {bands}")
        if not np.issubdtype(arr.dtype, np.number):
            raise InputError(f"patches must be numeric DN, got dtype {arr.dtype}")
        try:
            idx = band_indices(bands, self.meta.bands)
        except ValueError as exc:
            raise InputError(str(exc)) from None
        sel = arr[:, idx]
        if np.issubdtype(sel.dtype, np.floating) and not np.isfinite(sel).all():
            raise InputError("patches contain NaN or infinite values; mask them as nodata (0) first")
        return eurosat_rgb_recipe(sel)

    def predict_proba(self, patches: np.ndarray, bands: Sequence[str]) -> np.ndarray:
        """Calibrated probabilities (N, 10) for DN patches (N, len(bands), 64, 64)."""
        return self.predict_recipe(self.prepare(patches, bands))

    def predict_recipe(self, recipe_uint8: np.ndarray) -> np.ndarray:
        """Calibrated probabilities for images already in recipe space (e.g. EuroSAT JPEGs)."""
        return softmax(self.logits(recipe_uint8), self.temperature)

    def logits(self, recipe_uint8: np.ndarray) -> np.ndarray:
        """Uncalibrated logits (N, 10); averaged over the 8 dihedral views when TTA is on."""
        x_all = torch.from_numpy(np.ascontiguousarray(recipe_uint8, dtype=np.uint8))
        out = np.empty((len(x_all), len(self.meta.class_names)), dtype=np.float32)
        with self._lock, torch.inference_mode():
            self.calls += 1
            prev = torch.get_num_threads()
            if self.threads:
                torch.set_num_threads(self.threads)
            try:
                for i in range(0, len(x_all), self.batch_size):
                    x = normalise(x_all[i:i + self.batch_size], self.meta.norm_mean, self.meta.norm_std)
                    x = x.contiguous(memory_format=torch.channels_last)
                    views = range(8) if self.tta else range(1)
                    z = sum(self.model(dihedral(x, k)) for k in views) / len(views)
                    out[i:i + len(x)] = z.numpy()
            finally:
                torch.set_num_threads(prev)
        return out


_DEFAULT: dict[tuple, Classifier] = {}


def load_classifier(weights: str | Path = DEFAULT_WEIGHTS, threads: int | None = None,
                    tta: bool | None = None) -> Classifier:
    """A process-wide shared Classifier for these settings (loaded on first use)."""
    key = (str(weights), threads, tta)
    if key not in _DEFAULT:
        _DEFAULT[key] = Classifier(weights, threads=threads, tta=tta)
    return _DEFAULT[key]
