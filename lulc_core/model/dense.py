"""Dense class maps: one fully convolutional pass gives class probabilities for every window of
the analysis geometry (:data:`~lulc_core.grid.GEOMETRY`).

The per-window classifier (:class:`~lulc_core.model.classifier.Classifier`) sees each window
alone, zero-padded at its borders. Run naively over a whole scene, the same ResNet sees real
context where a lone window saw zeros and agrees with the per-window answer on only about two
thirds of the windows. The dense model is therefore a *student*: a copy of the shipped ResNet
fine-tuned (``scripts/distill_dense.py``) so that its fully convolutional output matches the
per-window classifier's calibrated probabilities (with TTA) on unlabelled real scenes.

Geometry: for a (H, W) image the trunk gives features at its output stride, which is the
geometry's step; window (i, j) covers pixels ``[step i, step i + window)`` on each axis and its
logits are the linear head applied to the mean of the feature cells it covers (the global average pool of a lone window).
Scenes are processed in overlapping tiles so memory stays bounded whatever the scene's size:
the input recipe is applied tile by tile, and tiles without any valid pixel are skipped (their
windows are nodata anyway), so time and memory follow the imagery present. Inference runs the
folded bf16 copy of the network (:func:`~lulc_core.model.inference.inference_network`).

Refine cascade (:func:`refine_windows`): windows whose dense top probability is under a
threshold are classified again by the per-window classifier (plain, each window alone) and take
its probabilities. The threshold ships in ``lulc_core/data/dense_refine.json`` with the sha256 of
both weights files it was tuned for (``scripts/tune_dense_refine.py``; read by
:mod:`lulc_core.model.cascades`).

The dense weights file (the student and its position-aware head) is read and written by
:mod:`lulc_core.model.weights` (:func:`~lulc_core.model.weights.load_dense_weights`, checked like
any weights file).
"""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lulc_core.bands import band_indices
from lulc_core.grid import GEOMETRY, STEP_PX, WINDOW_PX
from lulc_core.model.calibration import softmax
from lulc_core.model.inference import INFERENCE_BF16, exclusive_threads, inference_network, network_dtype
from lulc_core.model.recipes import recipe_for
from lulc_core.model.transforms import dihedral, normalise
from lulc_core.model.weights import SHIPPED_DENSE, WeightsMetadata, load_dense_weights, weights_sha256

FEATURES_PER_WINDOW = GEOMETRY.cells_per_window  # feature cells per window side (the trunk's stride is the step)
REFINE_CHUNK = 64  # windows re-classified per call: as fast as 256 on 2 cores, ~120 MB less peak memory
TILE_PX = 768  # windows whose origin lies in a TILE_PX square are computed together
CONTEXT_PX = 64  # extra pixels of context read around each tile


def trunk(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """A torchvision ResNet without pool and head: (N, C, H, W) -> (N, 512, H/16, W/16)."""
    x = model.maxpool(model.relu(model.bn1(model.conv1(x))))
    return model.layer4(model.layer3(model.layer2(model.layer1(x))))


def dense_logits(model: nn.Module, x: torch.Tensor, head: nn.Conv2d | None = None) -> torch.Tensor:
    """Logits of every 64x64 window at a 16-px step: (N, C, H, W) -> (N, classes, H/16-3, W/16-3).

    Without ``head`` a window's logits are the linear head on the mean of the 4x4 feature cells
    it covers (the per-window model's global average pool). A position-aware ``head`` (a 4x4
    convolution) weighs each of the 16 cells by its place in the window instead, which lets the
    dense path imitate how a lone window treats its borders.
    """
    f = trunk(model, x)
    if head is not None:
        return head(f)
    f = F.avg_pool2d(f, FEATURES_PER_WINDOW, stride=1)
    return torch.einsum("nchw,kc->nkhw", f, model.fc.weight) + model.fc.bias.view(1, -1, 1, 1)


def head_from_fc(fc: nn.Linear) -> nn.Conv2d:
    """The 4x4 convolution equal to average pooling followed by ``fc`` (the starting point)."""
    head = nn.Conv2d(fc.in_features, fc.out_features, FEATURES_PER_WINDOW)
    with torch.no_grad():
        head.weight.copy_(fc.weight[:, :, None, None].expand(-1, -1, FEATURES_PER_WINDOW, FEATURES_PER_WINDOW)
                          / FEATURES_PER_WINDOW ** 2)
        head.bias.copy_(fc.bias)
    return head




@dataclass
class DenseProbabilities:
    """Calibrated probabilities of every window: ``probs`` (rows, cols, classes), window (i, j)
    starting at pixel (16 i, 16 j) of the image it came from."""

    probs: np.ndarray
    step_px: int = STEP_PX
    window_px: int = WINDOW_PX
    refined: np.ndarray | None = None  # (rows, cols) bool: windows re-classified one by one


def refine_windows(dp: DenseProbabilities, dn: np.ndarray, bands: Sequence[str], classifier,
                   refine_below: float, candidates: np.ndarray | None = None,
                   progress: Callable[[float], None] | None = None) -> DenseProbabilities:
    """Windows whose dense top probability is under ``refine_below`` (among ``candidates``, a
    (rows, cols) bool mask; all windows when None) take the per-window classifier's calibrated
    probabilities (``classifier.predict_proba``, plain) of their own DN window, pixels
    ``[16 i, 16 i + 64) x [16 j, 16 j + 64)`` of ``dn`` (bands, H, W)."""
    probs = dp.probs.copy()
    refined = probs.max(-1) < refine_below
    if candidates is not None:
        refined &= candidates
    rows, cols = np.nonzero(refined)
    if len(rows):
        idx = band_indices(list(bands), classifier.recipe.bands)
        sel_bands = [list(bands)[i] for i in idx]
        s, w = dp.step_px, dp.window_px
        for k in range(0, len(rows), REFINE_CHUNK):
            rr, cc = rows[k:k + REFINE_CHUNK], cols[k:k + REFINE_CHUNK]
            chunk = np.stack([dn[idx, r * s:r * s + w, c * s:c * s + w] for r, c in zip(rr, cc)])
            probs[rr, cc] = classifier.predict_proba(chunk, sel_bands, tta=False)
            if progress:
                progress(min(1.0, (k + REFINE_CHUNK) / len(rows)))
    return DenseProbabilities(probs, dp.step_px, dp.window_px, refined)


class DenseClassifier:
    """The distilled student, run fully convolutionally over whole scenes in bounded tiles."""

    def __init__(self, weights: str | Path | None = None, threads: int | None = None,
                 tile_px: int = TILE_PX, context_px: int = CONTEXT_PX, tta: bool = False,
                 bf16: bool | None = None) -> None:
        self.weights = SHIPPED_DENSE if weights is None else Path(weights)
        model, self.meta, self.head = load_dense_weights(self.weights)
        self.sha256 = weights_sha256(self.weights)  # what the shipped refine threshold is matched by
        self.recipe = recipe_for(self.meta)
        self.tta = tta
        self.bf16 = INFERENCE_BF16 if bf16 is None else bf16
        self.net = inference_network(model, self.bf16, inplace=True)  # what inference runs; the one copy kept
        self._model: nn.Module | None = None
        self.net_head = None if self.head is None else (
            copy.deepcopy(self.head).to(network_dtype(self.net)).to(memory_format=torch.channels_last))
        if tile_px % STEP_PX or context_px % STEP_PX:
            raise ValueError(f"tile and context must be multiples of {STEP_PX} px")
        self.tile_px, self.context_px = tile_px, context_px
        self.geometry = GEOMETRY  # the trunk's output stride is the geometry's step
        self.threads = threads
        self._lock = threading.Lock()
        self.calls = 0

    @property
    def model(self) -> nn.Module:
        """The student as trained (fp32, batch norm unfolded), read from the weights on first use
        (inference runs :attr:`net`; this is for the distillation script and tests)."""
        if self._model is None:
            self._model = load_dense_weights(self.weights)[0].to(memory_format=torch.channels_last)
        return self._model

    @property
    def class_names(self) -> list[str]:
        return list(self.meta.class_names)

    @property
    def temperature(self) -> float:
        return self.meta.temperature

    def predict_scene(self, dn: np.ndarray, bands: Sequence[str], valid: np.ndarray | None = None,
                      progress: Callable[[float], None] | None = None,
                      origin_px: tuple[int, int] = (0, 0)) -> DenseProbabilities:
        """Probabilities of every window of a (bands, H, W) DN image (the weights' recipe is applied
        tile by tile; windows of tiles without valid pixels get uniform probabilities).

        ``origin_px``: the pixel (y, x) where the partition into tiles starts (tiles then start at
        every ``tile_px`` from it, with partial tiles before it): a region's tile passes the offset of
        its core, so that its windows are computed in the tiles a single run over the region uses."""
        idx = band_indices(list(bands), self.recipe.bands)
        dn = np.asarray(dn)

        def tile_recipe(y0: int, y1: int, x0: int, x1: int) -> np.ndarray | None:
            v = None if valid is None else valid[y0:y1, x0:x1]
            if v is not None and not v.any():
                return None
            return self.recipe.apply(dn[idx, y0:y1, x0:x1], v)

        probs = softmax(self._run_tiles(dn.shape[1], dn.shape[2], tile_recipe, progress, origin_px),
                        self.temperature)
        return DenseProbabilities(probs.astype(np.float32))

    def logits_recipe(self, recipe: np.ndarray, progress: Callable[[float], None] | None = None) -> np.ndarray:
        """Logits (rows, cols, classes) of every window of a (C, H, W) uint8 recipe image."""
        _, h, w = recipe.shape
        return self._run_tiles(h, w, lambda y0, y1, x0, x1: recipe[:, y0:y1, x0:x1], progress)

    def _run_tiles(self, h: int, w: int, read: Callable[[int, int, int, int], np.ndarray | None],
                   progress: Callable[[float], None] | None, origin_px: tuple[int, int] = (0, 0)) -> np.ndarray:
        """Logits of every window of an (h, w) image whose recipe values ``read(y0, y1, x0, x1)``
        gives tile by tile (None: no valid pixel there, logits stay 0); tiles start at ``origin_px``
        (see :meth:`predict_scene`)."""
        rows, cols = self.geometry.window_count(h), self.geometry.window_count(w)
        out = np.zeros((rows, cols, len(self.class_names)), dtype=np.float32)
        if rows == 0 or cols == 0:
            return out
        if any(o % STEP_PX for o in origin_px):
            raise ValueError(f"the tiles' origin must be a multiple of {STEP_PX} px, got {origin_px}")
        oy, ox = (-(o % self.tile_px) if o % self.tile_px else 0 for o in origin_px)
        tiles = [(r0, c0) for r0 in range(oy, rows * STEP_PX, self.tile_px)
                 for c0 in range(ox, cols * STEP_PX, self.tile_px)]
        with exclusive_threads(self._lock, self.threads), torch.inference_mode():
            self.calls += 1
            for k, (r0, c0) in enumerate(tiles):
                self._tile(read, h, w, out, r0, c0)
                if progress:
                    progress((k + 1) / len(tiles))
        return out

    def _tile(self, read: Callable[[int, int, int, int], np.ndarray | None], h: int, w: int,
              out: np.ndarray, r0: int, c0: int) -> None:
        """Windows with origin in [r0, r0 + tile) x [c0, c0 + tile), computed with context around
        (a tile starting before the image, r0 or c0 < 0, holds only its windows inside it)."""
        rows, cols = out.shape[:2]
        wr1 = min(rows, (r0 + self.tile_px) // STEP_PX)
        wc1 = min(cols, (c0 + self.tile_px) // STEP_PX)
        r0, c0 = max(r0, 0), max(c0, 0)
        wr0, wc0 = r0 // STEP_PX, c0 // STEP_PX
        if wr1 <= wr0 or wc1 <= wc0:
            return
        y0, x0 = max(0, r0 - self.context_px), max(0, c0 - self.context_px)
        y1 = min(h, (wr1 - 1) * STEP_PX + WINDOW_PX + self.context_px)
        x1 = min(w, (wc1 - 1) * STEP_PX + WINDOW_PX + self.context_px)
        tile = read(y0, y1, x0, x1)
        if tile is None:
            return
        x = torch.from_numpy(np.ascontiguousarray(tile, dtype=np.uint8))[None]
        x = normalise(x, self.meta.norm_mean, self.meta.norm_std).to(network_dtype(self.net))
        x = x.contiguous(memory_format=torch.channels_last)
        if self.tta:  # the 8 flips / rotations of the tile, each window grid turned back, averaged
            z = sum(undo_dihedral(dense_logits(self.net, dihedral(x, k), self.net_head), k).float()
                    for k in range(8)) / 8
        else:
            z = dense_logits(self.net, x, self.net_head).float()
        z = z[0].permute(1, 2, 0).numpy()
        oy, ox = (r0 - y0) // STEP_PX, (c0 - x0) // STEP_PX
        out[wr0:wr1, wc0:wc1] = z[oy:oy + wr1 - wr0, ox:ox + wc1 - wc0]


def undo_dihedral(x: torch.Tensor, k: int) -> torch.Tensor:
    """Inverse of :func:`~lulc_core.model.transforms.dihedral` on the last two axes."""
    x = torch.rot90(x, -(k % 4), dims=(-2, -1))
    return x.flip(-1) if k >= 4 else x


def windows_at(recipe: np.ndarray, step_px: int = STEP_PX, window_px: int = WINDOW_PX) -> np.ndarray:
    """All windows of a (C, H, W) image at a step, as a (rows, cols, C, window, window) view."""
    c, h, w = recipe.shape
    rows, cols = (h - window_px) // step_px + 1, (w - window_px) // step_px + 1
    s = recipe.strides
    return np.lib.stride_tricks.as_strided(
        recipe, (rows, cols, c, window_px, window_px), (s[1] * step_px, s[2] * step_px, s[0], s[1], s[2]),
        writeable=False)


def kept_out_areas(meta: WeightsMetadata) -> tuple[str, ...]:
    """The non-demo areas a student's distillation kept out (``scripts/distill_dense.py train --keep-out``,
    so that its refine cascade is tuned on windows it never saw); () for weights that saw every non-demo
    area or were never distilled."""
    return tuple((meta.training or {}).get("distillation", {}).get("kept_out_areas", ()))


def metadata_for_student(teacher: WeightsMetadata, distillation: dict) -> WeightsMetadata:
    """The student's metadata: the teacher's input contract plus how it was distilled."""
    from dataclasses import replace

    return replace(teacher, temperature=1.0, temperature_tta=1.0, tta_default=False,
                   training={"distillation": distillation, "previous_cycle": teacher.training})
