"""Resampling a raster onto a 10 m grid, the same way whatever window of the grid is asked for.

GDAL's warper (``rasterio.warp.reproject``) fits its bilinear kernel to each processing chunk
(the kernel widens by the chunk's own source/destination scale when it downsamples, and the
coordinate transform is approximated per chunk), so a tile of a grid and the whole grid get
different values at the same pixel (up to ~100 DN on most pixels of the demo's lon/lat files).
Tiled regions (:mod:`lulc_core.region`) need a tile's pixels to equal the whole grid's, so the
local provider resamples here instead, with every input a pure function of the destination
pixel's absolute position:

- **Coordinates**: each destination pixel centre's position in the source CRS is interpolated
  (bilinearly) between exact pyproj transforms at nodes every :data:`NODE_PX` pixels of the
  destination CRS's absolute lattice (the same nodes for any window; error < 1e-4 source px).
- **Kernel**: a triangle (bilinear) kernel whose radius along each source axis is 1 source pixel,
  widened to cover one destination pixel where the source is finer (as GDAL's bilinear does when
  downsampling); the widening is fixed per source file and destination CRS/resolution, from the
  file's centre, never per window.
- **No data**: source value 0 (and outside the file) is no data; a destination pixel whose centre
  falls outside the source is 0; otherwise the kernel is renormalised over the valid taps (0 if
  none).
"""

from __future__ import annotations

import math

import numpy as np
from affine import Affine


def _apply(t: Affine, x, y):
    """``t`` applied to coordinates (scalars or arrays)."""
    return t.a * x + t.b * y + t.c, t.d * x + t.e * y + t.f

from lulc_core.grid import _transformer

#: Exact coordinate transforms on nodes every this many destination pixels, interpolated between.
NODE_PX = 16


def node_coords(crs: str, transform: Affine, rows: tuple[int, int], cols: tuple[int, int],
                src_crs: str) -> tuple[np.ndarray, np.ndarray]:
    """Source-CRS (x, y) of the centres of destination pixels ``rows`` x ``cols`` (half-open
    ranges on the grid of ``transform``), interpolated between exact transforms at absolute nodes."""
    res_x, res_y = transform.a, transform.e
    if transform.b or transform.d:
        raise ValueError("the destination grid must be north-up")
    x = transform.c + (np.arange(*cols) + 0.5) * res_x
    y = transform.f + (np.arange(*rows) + 0.5) * res_y
    step_x, step_y = NODE_PX * abs(res_x), NODE_PX * abs(res_y)
    kx, ky = np.floor(x / step_x), np.floor(y / step_y)
    fx, fy = x / step_x - kx, y / step_y - ky
    nx = np.arange(kx.min(), kx.max() + 2) * step_x
    ny = np.arange(ky.min(), ky.max() + 2) * step_y
    if str(src_crs) == str(crs):
        gx, gy = np.broadcast_to(nx, (ny.size, nx.size)), np.broadcast_to(ny[:, None], (ny.size, nx.size))
    else:
        mx, my = np.meshgrid(nx, ny)
        gx, gy = _transformer(crs, src_crs).transform(mx, my)
    ix = (kx - kx.min()).astype(np.intp)
    iy = (ky - ky.min()).astype(np.intp)

    def interp(g: np.ndarray) -> np.ndarray:
        top = g[iy][:, ix] * (1 - fx) + g[iy][:, ix + 1] * fx
        bottom = g[iy + 1][:, ix] * (1 - fx) + g[iy + 1][:, ix + 1] * fx
        return top * (1 - fy)[:, None] + bottom * fy[:, None]

    return interp(np.asarray(gx, dtype=np.float64)), interp(np.asarray(gy, dtype=np.float64))


def kernel_radii(src_crs: str, src_transform: Affine, src_shape: tuple[int, int], crs: str,
                 resolution: float) -> tuple[float, float]:
    """(column, row) kernel radius in source pixels: 1, or the source pixels one destination pixel
    spans where the source is finer. From the source file's centre: fixed per file and grid CRS."""
    h, w = src_shape
    cx, cy = _apply(src_transform, w / 2, h / 2)
    x0, y0 = _transformer(src_crs, crs).transform(cx, cy)
    back = _transformer(crs, src_crs)
    inv = ~src_transform
    c0, r0 = _apply(inv, cx, cy)
    c1, r1 = _apply(inv, *back.transform(x0 + resolution, y0))
    c2, r2 = _apply(inv, *back.transform(x0, y0 - resolution))
    return max(1.0, math.hypot(c1 - c0, c2 - c0)), max(1.0, math.hypot(r1 - r0, r2 - r0))


def _taps(u: np.ndarray, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """Integer source positions and triangle weights (k, n) of the kernel around positions ``u``
    (in pixel-centre coordinates: pixel i's centre is at i)."""
    n = int(math.ceil(2 * radius))
    i0 = np.floor(u - radius).astype(np.intp) + 1
    idx = i0[None] + np.arange(n, dtype=np.intp)[:, None]
    w = np.maximum(0.0, 1.0 - np.abs(idx - u[None]) / radius).astype(np.float32)
    return idx, w


class SourcePlan:
    """Where each destination pixel of a window reads one source grid: the source window, and per
    kernel tap a flat index into it and a weight (0 off the source). Computed once for the bands
    that share the source grid."""

    def __init__(self, sx: np.ndarray, sy: np.ndarray, src_transform: Affine, src_shape: tuple[int, int],
                 radii: tuple[float, float]) -> None:
        c, r = _apply(~src_transform, sx, sy)
        h, w = src_shape
        self.shape = sx.shape
        inside = ((c >= 0) & (c < w) & (r >= 0) & (r < h)).ravel()
        self.where = np.flatnonzero(inside)
        self.window: tuple[int, int, int, int] | None = None
        if not self.where.size:
            return
        c = c.ravel()[self.where] - 0.5  # pixel-centre coordinates
        r = r.ravel()[self.where] - 0.5
        ci, cw = _taps(c, radii[0])
        ri, rw = _taps(r, radii[1])
        r0, r1 = max(0, int(ri.min())), min(h, int(ri.max()) + 1)
        c0, c1 = max(0, int(ci.min())), min(w, int(ci.max()) + 1)
        self.window = (r0, r1, c0, c1)
        ws = c1 - c0
        cw = np.where((ci >= 0) & (ci < w), cw, np.float32(0))
        rw = np.where((ri >= 0) & (ri < h), rw, np.float32(0))
        ci, ri = np.clip(ci, c0, c1 - 1) - c0, np.clip(ri, r0, r1 - 1) - r0
        self.index = [(ri[a] * ws + ci[b]).astype(np.int32) for a in range(len(ri)) for b in range(len(ci))]
        self.weight = [rw[a] * cw[b] for a in range(len(ri)) for b in range(len(ci))]

    def apply(self, src: np.ndarray) -> np.ndarray:
        """The destination values (float32, 0 = no data) from ``src``, the source rows and columns of
        :attr:`window` (value 0 = no data)."""
        out = np.zeros(self.shape, dtype=np.float32)
        if self.window is None:
            return out
        flat = np.ascontiguousarray(src, dtype=np.float32).ravel()
        acc = np.zeros(self.where.size, dtype=np.float32)
        wsum = np.zeros(self.where.size, dtype=np.float32)
        for idx, wt in zip(self.index, self.weight):
            v = flat[idx]
            wt = np.where(v > 0, wt, np.float32(0))
            acc += wt * v
            wsum += wt
        out.ravel()[self.where] = np.where(wsum > 1e-6, acc / np.maximum(wsum, np.float32(1e-6)), np.float32(0))
        return out
