"""Deep change vectors: change evidence from the classifier's own early layers (DCVA, Saha et al. 2019).

Both dates go through the per-window classifier's input recipe and its first layers (the folded
network the app runs): the stem (``conv1``, 20 m) and ``layer1`` (20 m). Per layer:

1. every channel is scaled by its standard deviation over the comparable locations of both dates
   (:class:`ChannelSums`: count, sum and sum of squares, which a region adds over its tiles);
2. the change at a location is the root mean square over channels of the scaled difference
   (:func:`distance`; matching each location to the other date's nearest within a radius was
   measured, no gain);
3. a location is changed above mean + 2 sd of that distance over the comparable locations, never
   below :data:`MIN_DISTANCE` (:class:`DistanceSums`, additive as well: the same rule as the 10 m
   spectral threshold and its floor);
4. each cell (16 px) gets its share of changed locations and its mean distance
   (:func:`cell_features`).

No change label is needed for any of it. What these four numbers per cell are worth was measured
on the OSCD change maps, leave one area out (``bench/eval_change_oscd.py``): together with the 10 m
spectral shares they decide the counted change (:class:`lulc_core.joint.CountedChangeModel`).

Square blocks with a halo bound memory whatever the scene's size; a scene small enough keeps its
layers between the two steps instead of running them twice (:data:`KEEP_BYTES`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

import numpy as np
import torch

from lulc_core.bands import band_indices
from lulc_core.grid import STEP_PX
from lulc_core.model.inference import exclusive_threads
from lulc_core.model.transforms import normalise
from lulc_core.spectral import CHANGE_SD, MIN_PIXELS

LAYERS: tuple[str, ...] = ("conv1", "layer1")
LAYER_STRIDE = 2  # both layers sit at 20 m (stride 2 of the 10 m grid)
FEATURES: tuple[str, ...] = ("conv1_share", "conv1_mean", "layer1_share", "layer1_mean")
HALO_PX = 32  # context around a block: more than the layers' receptive field (23 px)
#: Side of the square blocks of 10 m pixels the layers run on: memory bounded whatever the scene's
#: width, and faster than whole-width strips (the layers' activations stay in cache: at 2 threads
#: early_layers ran at 4.8 Mpx/s on 576 px squares against 3.8 on 576 x 5056 strips; a 2528 x 5056 px
#: pair, ``python bench/bench_deep_change.py --wide 2528x5056``, took 14.8-15.4 s against 32.8 s in strips).
BLOCK_PX = 512
KEEP_BYTES = 256 * 2**20  # scenes whose two dates' layers fit this are run through the layers once
#: A location is never changed below this distance: the difference must be at least as large as the
#: scene's own spread of each channel from place to place (the channels are scaled by it). Binds only on
#: pairs with almost no change (a scene against itself or a shifted copy: 0.6-0.7 for the stem); on the
#: OSCD pairs the mean + 2 sd rule gives 1.01-1.45 (stem) and 1.13-1.52 (layer1), above it.
MIN_DISTANCE = 1.0


def early_layers(net: torch.nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The stem and layer1 outputs of a torchvision-style ResNet (N, C, H/2, W/2 each)."""
    x0 = net.maxpool(net.relu(net.bn1(net.conv1(x))))
    return {"conv1": x0, "layer1": net.layer1(x0)}


def location_valid(valid: np.ndarray) -> np.ndarray:
    """20 m locations whose 2 x 2 pixels are all comparable."""
    h, w = valid.shape[0] // LAYER_STRIDE, valid.shape[1] // LAYER_STRIDE
    v = valid[: h * LAYER_STRIDE, : w * LAYER_STRIDE].reshape(h, LAYER_STRIDE, w, LAYER_STRIDE)
    return v.all(axis=(1, 3))


@dataclass
class ChannelSums:
    """Per layer: count of locations and per-channel sum and sum of squares over both dates."""

    n: dict[str, float] = field(default_factory=dict)
    s1: dict[str, np.ndarray] = field(default_factory=dict)
    s2: dict[str, np.ndarray] = field(default_factory=dict)

    def add(self, layer: str, x: np.ndarray | torch.Tensor) -> None:
        """Add (N, C) feature values (each part summed in float32, the parts in float64)."""
        t = (x if isinstance(x, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(x))).float()
        self.n[layer] = self.n.get(layer, 0.0) + t.shape[0]
        self.s1[layer] = self.s1.get(layer, 0.0) + t.sum(0).double().numpy()
        self.s2[layer] = self.s2.get(layer, 0.0) + t.square().sum(0).double().numpy()

    def __add__(self, other: "ChannelSums") -> "ChannelSums":
        out = ChannelSums()
        for s in (self, other):
            for k in s.n:
                out.n[k] = out.n.get(k, 0.0) + s.n[k]
                out.s1[k] = out.s1.get(k, 0.0) + s.s1[k]
                out.s2[k] = out.s2.get(k, 0.0) + s.s2[k]
        return out

    def channel_sd(self) -> dict[str, np.ndarray] | None:
        """Per layer, each channel's standard deviation (None: too few comparable locations)."""
        if not self.n or min(self.n.values()) < MIN_PIXELS:
            return None
        out = {}
        for k in LAYERS:
            mean = self.s1[k] / self.n[k]
            out[k] = np.sqrt(np.maximum(self.s2[k] / self.n[k] - mean * mean, 0.0)) + 1e-6
        return out

    def to_json(self) -> dict:
        return {k: [self.n[k], np.asarray(self.s1[k]).tolist(), np.asarray(self.s2[k]).tolist()] for k in self.n}

    @classmethod
    def from_json(cls, d: dict) -> "ChannelSums":
        out = cls()
        for k, (n, s1, s2) in d.items():
            out.n[k], out.s1[k], out.s2[k] = float(n), np.asarray(s1, np.float64), np.asarray(s2, np.float64)
        return out


@dataclass
class DistanceSums:
    """Per layer: count, sum and sum of squares of the distance over comparable locations."""

    sums: dict[str, list[float]] = field(default_factory=dict)

    def add(self, d: dict[str, np.ndarray]) -> None:
        for k, v in d.items():
            v = v[np.isfinite(v)].astype(np.float64)
            n, s1, s2 = self.sums.get(k, [0.0, 0.0, 0.0])
            self.sums[k] = [n + len(v), s1 + float(v.sum()), s2 + float(np.square(v).sum())]

    def __add__(self, other: "DistanceSums") -> "DistanceSums":
        out = DistanceSums({k: list(v) for k, v in self.sums.items()})
        for k, (n, s1, s2) in other.sums.items():
            a = out.sums.get(k, [0.0, 0.0, 0.0])
            out.sums[k] = [a[0] + n, a[1] + s1, a[2] + s2]
        return out

    def thresholds(self, min_distance: float = MIN_DISTANCE) -> dict[str, float] | None:
        """Per layer, mean + 2 sd of the distance, never below ``min_distance`` (None: too few
        comparable locations)."""
        if not self.sums or min(v[0] for v in self.sums.values()) < MIN_PIXELS:
            return None
        out = {}
        for k, (n, s1, s2) in self.sums.items():
            mean = s1 / n
            out[k] = max(min_distance, mean + CHANGE_SD * float(np.sqrt(max(s2 / n - mean * mean, 0.0))))
        return out


@dataclass
class Block:
    """Both dates' layers over one block: ``row`` / ``col`` its first 20 m location in the image,
    ``a`` / ``b`` per layer (rows, cols, C) in the network's dtype, ``valid`` its comparable locations."""

    row: int
    col: int
    a: dict[str, torch.Tensor]
    b: dict[str, torch.Tensor]
    valid: np.ndarray


class DeepFeatures:
    """The early layers of one classifier (its recipe and folded network) over two-date DN images."""

    def __init__(self, classifier) -> None:
        self.classifier = classifier

    def _layers(self, dn: np.ndarray, bands: tuple[str, ...], valid: np.ndarray) -> dict[str, torch.Tensor]:
        """Per layer (rows, cols, C): channels last, as the network computes them (no copy)."""
        c = self.classifier
        idx = band_indices(list(bands), c.recipe.bands)
        r = c.recipe.apply(dn[idx], valid)
        dtype = next(c.net.parameters()).dtype
        x = normalise(torch.from_numpy(np.ascontiguousarray(r))[None], c.meta.norm_mean, c.meta.norm_std)
        with torch.inference_mode():
            out = early_layers(c.net, x.to(dtype).contiguous(memory_format=torch.channels_last))
        return {k: v[0].permute(1, 2, 0) for k, v in out.items()}

    def blocks(self, a: np.ndarray, b: np.ndarray, bands: tuple[str, ...], valid: np.ndarray,
               core: tuple[int, int, int, int] | None = None) -> Iterator[Block]:
        """The layers of both dates per :data:`BLOCK_PX` square of ``core`` (pixels y0, x0, y1, x1; default
        all), each computed with :data:`HALO_PX` of context around it where the image has it; blocks
        without a comparable location are skipped."""
        h, w = valid.shape
        y0, x0, y1, x1 = core or (0, 0, h, w)
        for by in range(y0, y1, BLOCK_PX):
            by1 = min(y1, by + BLOCK_PX)
            for bx in range(x0, x1, BLOCK_PX):
                bx1 = min(x1, bx + BLOCK_PX)
                lv = location_valid(valid[by:by1, bx:bx1])
                if not lv.any():
                    continue
                cy0, cy1 = max(0, by - HALO_PX), min(h, by1 + HALO_PX)
                cx0, cx1 = max(0, bx - HALO_PX), min(w, bx1 + HALO_PX)
                v = valid[cy0:cy1, cx0:cx1]
                with exclusive_threads(self.classifier._lock, self.classifier.threads):
                    fa = self._layers(a[:, cy0:cy1, cx0:cx1], bands, v)
                    fb = self._layers(b[:, cy0:cy1, cx0:cx1], bands, v)
                sy, sx = (by - cy0) // LAYER_STRIDE, (bx - cx0) // LAYER_STRIDE
                cut = (slice(sy, sy + lv.shape[0]), slice(sx, sx + lv.shape[1]))
                yield Block(by // LAYER_STRIDE, bx // LAYER_STRIDE, {k: f[cut].contiguous() for k, f in fa.items()},
                            {k: f[cut].contiguous() for k, f in fb.items()}, lv)


def channel_sums(deep: DeepFeatures, a: np.ndarray, b: np.ndarray, bands: tuple[str, ...], valid: np.ndarray,
                 core: tuple[int, int, int, int] | None = None,
                 keep: list[Block] | None = None) -> ChannelSums:
    """Channel sums over the comparable locations of ``core`` (pixels y0, x0, y1, x1; default all)
    of both dates; the blocks are appended to ``keep`` when given (for :func:`change_distance`)."""
    sums = ChannelSums()
    for blk in deep.blocks(a, b, bands, valid, core):
        m = torch.from_numpy(blk.valid)
        for k in LAYERS:
            sums.add(k, blk.a[k][m])
            sums.add(k, blk.b[k][m])
        if keep is not None:
            keep.append(blk)
    return sums


def distance(blk: Block, layer: str, sd: np.ndarray) -> np.ndarray:
    """The block's distance map (rows, cols) for one layer: the RMS over channels of the difference
    scaled by ``sd``; NaN where not comparable."""
    diff = blk.a[layer].float() - blk.b[layer].float()
    w = torch.from_numpy((1.0 / (len(sd) * np.square(sd))).astype(np.float32))
    d = (diff.square_() @ w).sqrt_().numpy()
    return np.where(blk.valid, d, np.nan).astype(np.float32)


def change_distance(deep: DeepFeatures, a: np.ndarray, b: np.ndarray, bands: tuple[str, ...], valid: np.ndarray,
                    sd: dict[str, np.ndarray], core: tuple[int, int, int, int] | None = None,
                    kept: list[Block] | None = None) -> dict[str, np.ndarray]:
    """Per layer, the distance at every 20 m location of ``core`` (pixels; default all): a (rows, cols)
    float32 map, NaN where not comparable. ``kept``: the blocks :func:`channel_sums` kept."""
    y0, x0, y1, x1 = core or (0, 0, *valid.shape)
    h, w = (y1 - y0) // LAYER_STRIDE, (x1 - x0) // LAYER_STRIDE
    out = {k: np.full((h, w), np.nan, np.float32) for k in LAYERS}
    for blk in kept if kept is not None else deep.blocks(a, b, bands, valid, core):
        r, c = blk.row - y0 // LAYER_STRIDE, blk.col - x0 // LAYER_STRIDE
        rows, cols = blk.valid.shape
        for k in LAYERS:
            out[k][r: r + rows, c: c + cols] = distance(blk, k, sd[k])
    return out


def cell_features(d: dict[str, np.ndarray], thresholds: dict[str, float], cell_px: int = STEP_PX) -> np.ndarray:
    """(rows, cols, 4) per cell of ``cell_px`` pixels: the :data:`FEATURES` (NaN where no comparable
    location); the maps' origin is a cell corner."""
    per = cell_px // LAYER_STRIDE
    out = []
    for k in LAYERS:
        m = d[k]
        h, w = -(-m.shape[0] // per) * per, -(-m.shape[1] // per) * per
        m = np.pad(m, ((0, h - m.shape[0]), (0, w - m.shape[1])), constant_values=np.nan)
        blocks = m.reshape(h // per, per, w // per, per)
        ok = np.isfinite(blocks)
        n = ok.sum(axis=(1, 3))
        with np.errstate(invalid="ignore", divide="ignore"):
            changed = ((np.nan_to_num(blocks, nan=-1.0) > thresholds[k]) & ok).sum(axis=(1, 3))
            mean = np.nansum(blocks, axis=(1, 3)) / n
            share = changed / n
        out += [np.where(n > 0, share, np.nan), np.where(n > 0, mean, np.nan)]
    return np.stack(out, -1).astype(np.float32)


@dataclass
class DeepChange:
    """One analysis' deep change evidence: per-cell :data:`FEATURES` and the statistics behind them."""

    features: np.ndarray  # (rows, cols, 4), NaN where no comparable location
    channel_sd: dict[str, np.ndarray] | None
    thresholds: dict[str, float] | None


def deep_change(classifier, a: np.ndarray, b: np.ndarray, bands: tuple[str, ...], valid: np.ndarray,
                cells: tuple[int, int], cell_px: int = STEP_PX) -> DeepChange:
    """The deep change evidence of two DN images on one grid (``valid``: comparable pixels), per cell of
    a (rows, cols) grid. The layers run once when the scene's differences fit :data:`KEEP_BYTES`,
    else twice (statistics, then distances), block by block."""
    deep = DeepFeatures(classifier)
    h, w = valid.shape
    fits = (h // LAYER_STRIDE) * (w // LAYER_STRIDE) * 64 * len(LAYERS) * 2 * 2 <= KEEP_BYTES
    kept: list[Block] | None = [] if fits else None
    sums = channel_sums(deep, a, b, bands, valid, keep=kept)
    sd = sums.channel_sd()
    empty = np.full((*cells, len(FEATURES)), np.nan, np.float32)
    if sd is None:
        return DeepChange(empty, None, None)
    d = change_distance(deep, a, b, bands, valid, sd, kept=kept)
    dsum = DistanceSums()
    dsum.add(d)
    thr = dsum.thresholds()
    if thr is None:
        return DeepChange(empty, sd, None)
    f = cell_features(d, thr, cell_px)
    out = empty.copy()
    r, c = min(cells[0], f.shape[0]), min(cells[1], f.shape[1])
    out[:r, :c] = f[:r, :c]
    return DeepChange(out, sd, thr)
