"""The classifier: Sentinel-2 L1C DN patches in, calibrated class probabilities out.

Input contract (checked on every call):
- ``patches``: array (N, bands, 64, 64) of Level-1C digital numbers (reflectance x 10000),
  finite, any numeric dtype; 0 is Sentinel-2 nodata.
- ``bands``: the band name of every channel, e.g. EuroSAT's 13-band order
  ``B01..B12, B8A`` or just ``("B04", "B03", "B02")``. Bands are picked by name, never by
  position, so any order or superset works.
The classifier applies the input recipe the weights' metadata names
(:func:`lulc_core.model.recipes.recipe_for`), then the normalisation stored with the weights,
then the ResNet (batch norm folded, channels-last, bf16: :mod:`lulc_core.model.inference`),
then temperature scaling.

Test-time augmentation is a **cascade**: every patch is classified plainly, and only patches
whose calibrated top probability is under a threshold are run through the other 7 dihedral
views and take the 8-view average (with the TTA temperature). The threshold was chosen on the
validation part of the training split and ships in ``lulc_core/data/tta_cascade.json`` with
the sha256 of the weights it belongs to (``scripts/tune_tta_cascade.py``; read by
:mod:`lulc_core.model.cascades`). Weights without a shipped threshold run full TTA when TTA is on.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from lulc_core.bands import band_indices
from lulc_core.errors import InputError
from lulc_core.grid import WINDOW_PX
from lulc_core.model.calibration import softmax
from lulc_core.model.cascades import tta_cascade_entry, tta_cascade_threshold
from lulc_core.model.inference import (ALL_VIEWS, INFERENCE_BF16, exclusive_threads, inference_network,
                                       predict_logits)
from lulc_core.model.recipes import recipe_for
from lulc_core.model.weights import default_weights_path, load_weights, weights_sha256

PATCH_SIZE = WINDOW_PX  # a window of the analysis geometry (a EuroSAT image)


def model_figures(meta, weights: str | Path | None = None, tta: bool | None = None,
                  threshold: float | None = None) -> dict:
    """Held-out EuroSAT test figures of a mode of these weights (None: :func:`default_weights_path`):
    plain, or with TTA on, the shipped cascade's when it runs at the shipped threshold (``threshold``
    None: the shipped one), else full TTA's. Keys: ``mode`` (words), ``accuracy``, ``ece_after``,
    ``ece_before`` (NaN where not measured), ``n_images``, ``kind`` (``cascade``, ``tta`` or ``plain``)
    and ``previous_accuracy``: the same mode's figure of the weights these replaced, where recorded."""
    tta = meta.tta_default if tta is None else tta
    previous = (meta.training.get("previous_model") or {}).get("test_accuracy") or {}
    entry = tta_cascade_entry(weights_sha256(default_weights_path() if weights is None else weights)) if tta else None
    if entry is not None and (threshold is None or threshold == float(entry["threshold"])):
        c = entry["test"]["cascade"]
        return {"mode": f"TTA cascade: the 8 flips and rotations for the {100 * c['tta_share']:.1f}% of patches "
                        f"under top probability {entry['threshold']:.2f}",
                "accuracy": c["accuracy"], "ece_after": c["ece"], "ece_before": float("nan"),
                "n_images": entry["test"]["n_images"], "kind": "cascade",
                "previous_accuracy": previous.get("cascade")}
    m = meta.test_metrics.get("tta" if tta else "plain", {})
    return {"mode": "full TTA (8 flips and rotations)" if tta else "plain",
            "accuracy": m.get("accuracy", float("nan")), "ece_after": m.get("ece_after", float("nan")),
            "ece_before": m.get("ece_before", float("nan")), "n_images": m.get("n_images"),
            "kind": "tta" if tta else "plain", "previous_accuracy": previous.get("tta" if tta else "plain")}


class Classifier:
    """A EuroSAT ResNet loaded once; thread-safe :meth:`predict_proba` on DN patches.

    ``weights``: None = :func:`~lulc_core.model.weights.default_weights_path` (``LULC_WEIGHTS``
    as set now, else the shipped model). ``tta``: None = the weights' default, False = plain,
    True = the TTA cascade. ``tta_threshold``: top-probability threshold of the cascade (None =
    the shipped one; ``float('inf')`` = full TTA on every patch, 0 = plain). ``bf16``: None = the
    measured default.
    """

    def __init__(self, weights: str | Path | None = None, threads: int | None = None,
                 tta: bool | None = None, batch_size: int = 256, tta_threshold: float | None = None,
                 bf16: bool | None = None) -> None:
        self.weights = default_weights_path() if weights is None else Path(weights)
        model, self.meta = load_weights(self.weights)
        self.sha256 = weights_sha256(self.weights)  # what shipped cascade thresholds are matched by
        self.recipe = recipe_for(self.meta)
        self.bf16 = INFERENCE_BF16 if bf16 is None else bf16
        self.net = inference_network(model, self.bf16, inplace=True)  # the one copy kept
        self._model: torch.nn.Module | None = None
        self.tta = self.meta.tta_default if tta is None else tta
        if tta_threshold is None:
            tta_threshold = tta_cascade_threshold(self.sha256)
        self.tta_threshold = float("inf") if tta_threshold is None else float(tta_threshold)
        self.batch_size = batch_size
        self.threads = threads
        self._lock = threading.Lock()
        self.calls = 0  # number of predict calls, for tests that check caching
        self.last_tta_share = 0.0  # share of the last call's patches the cascade sent to TTA

    @property
    def model(self) -> torch.nn.Module:
        """The network as trained (fp32, batch norm unfolded), read from the weights on first use
        (inference runs :attr:`net`; this is for benchmarks, scripts and tests)."""
        if self._model is None:
            self._model = load_weights(self.weights)[0].to(memory_format=torch.channels_last)
        return self._model

    def test_figures(self) -> dict:
        """:func:`model_figures` of the mode this classifier runs."""
        return model_figures(self.meta, self.weights, self.tta, self.tta_threshold)

    @property
    def class_names(self) -> list[str]:
        return list(self.meta.class_names)

    @property
    def bands(self) -> list[str]:
        return list(self.meta.bands)

    @property
    def temperature(self) -> float:
        """The temperature of the mode's final answers (TTA's where the cascade ran it)."""
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
            idx = band_indices(bands, self.recipe.bands)
        except ValueError as exc:
            raise InputError(str(exc)) from None
        sel = arr[:, idx]
        if np.issubdtype(sel.dtype, np.floating) and not np.isfinite(sel).all():
            raise InputError("patches contain NaN or infinite values; mask them as nodata (0) first")
        return self.recipe.apply(sel)

    def predict_proba(self, patches: np.ndarray, bands: Sequence[str], tta: bool | None = None) -> np.ndarray:
        """Calibrated probabilities (N, 10) for DN patches (N, len(bands), 64, 64).

        ``tta``: None = this classifier's mode; False = plain for this call only (a shared
        classifier is never reconfigured)."""
        return self.predict_recipe(self.prepare(patches, bands), tta)

    def predict_recipe(self, recipe_uint8: np.ndarray, tta: bool | None = None) -> np.ndarray:
        """Calibrated probabilities for images already in recipe space (e.g. EuroSAT JPEGs).

        Plain, or the TTA cascade (see the module docstring) when TTA is on (``tta`` overrides
        the classifier's mode for this call).
        """
        x = np.ascontiguousarray(recipe_uint8, dtype=np.uint8)
        self.calls += 1
        z0 = self._logits(x, (0,))
        probs = softmax(z0, self.meta.temperature)
        self.last_tta_share = 0.0
        if not (self.tta if tta is None else tta) or len(x) == 0:
            return probs
        need = probs.max(axis=1) < self.tta_threshold
        if need.any():
            rest = self._logits(x[need], ALL_VIEWS[1:])
            z_tta = (z0[need] + (len(ALL_VIEWS) - 1) * rest) / len(ALL_VIEWS)
            probs[need] = softmax(z_tta, self.meta.temperature_tta)
        self.last_tta_share = float(need.mean())
        return probs

    def logits(self, recipe_uint8: np.ndarray) -> np.ndarray:
        """Uncalibrated logits (N, 10): one view, or the mean of the 8 dihedral views (full TTA)
        when TTA is on (the cascade lives in :meth:`predict_recipe`)."""
        self.calls += 1
        return self._logits(np.ascontiguousarray(recipe_uint8, dtype=np.uint8), ALL_VIEWS if self.tta else (0,))

    def _logits(self, x: np.ndarray, views: Sequence[int]) -> np.ndarray:
        with exclusive_threads(self._lock, self.threads):
            return predict_logits(self.net, x, self.meta.norm_mean, self.meta.norm_std,
                                  batch_size=self.batch_size, views=views)


_DEFAULT: dict[tuple, Classifier] = {}


def load_classifier(weights: str | Path | None = None, threads: int | None = None,
                    tta: bool | None = None) -> Classifier:
    """A process-wide shared Classifier for these settings (loaded on first use; ``weights`` None:
    :func:`~lulc_core.model.weights.default_weights_path` as set now)."""
    weights = default_weights_path() if weights is None else weights
    key = (str(weights), threads, tta)
    if key not in _DEFAULT:
        _DEFAULT[key] = Classifier(weights, threads=threads, tta=tta)
    return _DEFAULT[key]
