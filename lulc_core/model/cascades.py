"""Shipped cascade thresholds and the weights they belong to.

Two cascades ship in ``lulc_core/data``, each tuned for particular weights and stating their sha256
(:func:`~lulc_core.model.weights.weights_sha256`):

- the per-window classifier's TTA cascade, ``tta_cascade.json`` (``threshold``; written by
  ``scripts/tune_tta_cascade.py``): patches under it get the 8 flips and rotations;
- the dense refine cascade, ``dense_refine.json`` (``refine_below``, for a pair of dense and
  per-window weights; ``scripts/tune_dense_refine.py``): dense windows under it are classified
  again one by one.

An entry applies only to the weights whose sha256 it names; other weights get None.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
TTA_CASCADE_FILE = DATA_DIR / "tta_cascade.json"
REFINE_FILE = DATA_DIR / "dense_refine.json"


def _matching_entry(path: Path, value_key: str, sha256: dict[str, str]) -> dict[str, Any] | None:
    """The JSON entry at ``path`` when each of its ``sha256`` keys has the given value and its
    ``value_key`` is a number, else None (also when the file is absent or malformed)."""
    try:
        entry = json.loads(Path(path).read_text())
        if all(entry[key] == value for key, value in sha256.items()):
            float(entry[value_key])
            return entry
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None


def tta_cascade_entry(weights_sha256: str, path: Path = TTA_CASCADE_FILE) -> dict[str, Any] | None:
    """The shipped TTA cascade entry (threshold, how it was chosen, test figures) for the weights
    with this sha256, else None."""
    return _matching_entry(path, "threshold", {"weights_sha256": weights_sha256})


def tta_cascade_threshold(weights_sha256: str, path: Path = TTA_CASCADE_FILE) -> float | None:
    """The TTA cascade threshold shipped for the weights with this sha256, else None."""
    entry = tta_cascade_entry(weights_sha256, path)
    return None if entry is None else float(entry["threshold"])


def refine_entry(dense_sha256: str, classifier_sha256: str, path: Path = REFINE_FILE) -> dict[str, Any] | None:
    """The shipped refine cascade entry (threshold, how it was chosen, held-out figures) for this pair
    of dense and per-window weights (by sha256), else None."""
    return _matching_entry(path, "refine_below", {"dense_weights_sha256": dense_sha256,
                                                  "classifier_weights_sha256": classifier_sha256})


def refine_threshold(dense_sha256: str, classifier_sha256: str, path: Path | None = None) -> float | None:
    """The ``refine_below`` for this pair of weights (by sha256), else None; ``path`` None: the
    shipped file, read once per pair."""
    if path is None:
        return _shipped_refine_threshold(dense_sha256, classifier_sha256)
    entry = refine_entry(dense_sha256, classifier_sha256, path)
    return None if entry is None else float(entry["refine_below"])


@functools.lru_cache(maxsize=16)
def _shipped_refine_threshold(dense_sha256: str, classifier_sha256: str) -> float | None:
    return refine_threshold(dense_sha256, classifier_sha256, REFINE_FILE)
