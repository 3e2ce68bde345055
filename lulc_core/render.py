"""Images for people: true colour with a display stretch, class maps and change maps as RGBA.

Rendered as plain arrays / PNG bytes, placed on maps as image overlays (no tile server).
"""

from __future__ import annotations

import html
import io

import numpy as np
from PIL import Image

from lulc_core.bands import RGB_BANDS, display_rgb
from lulc_core.change import KIND_NAMES, ChangeKind, ChangeResult, ChangeState
from lulc_core.classes import (CLASS_COLOURS, EUROSAT_CLASSES, GROUP_COLOURS, LAND_COVER_GROUPS, group_of_classes,
                               hex_to_rgb)
from lulc_core.classify import ClassMap
from lulc_core.cells import CellStatus
from lulc_core.scene import Scene

CLOUDY_RGBA = (255, 255, 255, 230)
NODATA_RGBA = (40, 40, 40, 200)
STATE_COLOURS = {ChangeState.UNCHANGED: "#d9d9d9", ChangeState.CHANGED: "#e4003a", ChangeState.UNCERTAIN: "#f2b134",
                 ChangeState.OUTSIDE: "#00000000"}
STATUS_LABELS = {"cloudy": "#ffffff", "no data": "#282828"}
#: The change map's colour of each kind (counted kinds in strong colours).
KIND_COLOURS = {ChangeKind.UNCHANGED: "#d9d9d9", ChangeKind.LAND_COVER: "#e4003a", ChangeKind.BUILT_UP: "#7a0177",
                ChangeKind.NATURAL: "#9ecae1", ChangeKind.UNCERTAIN: "#f2b134"}



def legend_items(level: str = "group", extras: bool = True) -> list[tuple[str, str]]:
    """``(colour, label)`` pairs of the class map at ``level`` ("group" or "class"), then (with
    ``extras``) cloudy, no data, changed and 10 m spectral change: the one legend of the maps,
    the page and the report."""
    items = ([(g.colour, g.name) for g in LAND_COVER_GROUPS] if level == "group"
             else [(c.colour, c.name) for c in EUROSAT_CLASSES])
    if extras:
        items += [(c, n) for n, c in STATUS_LABELS.items()]
        items += [(STATE_COLOURS[ChangeState.CHANGED], "changed (outline)"),
                  ("#%02x%02x%02x" % SPECTRAL_RGBA[:3], "10 m spectral change")]
    return items


def change_legend_items() -> list[tuple[str, str]]:
    """``(colour, label)`` pairs of the change map's kinds."""
    return [(c, KIND_NAMES[k] + (" (counted)" if k in (ChangeKind.LAND_COVER, ChangeKind.BUILT_UP) else ""))
            for k, c in KIND_COLOURS.items()]


def legend_html(items: list[tuple[str, str]]) -> str:
    """The legend as inline HTML swatches (report and page)."""
    return " ".join(f'<span style="display:inline-block;width:12px;height:12px;background:{c};'
                    f'border:1px solid #999"></span> {html.escape(n)}' for c, n in items)


def joint_true_colour(a: Scene, b: Scene, percentiles: tuple[float, float] = (2, 98)) -> tuple[np.ndarray, np.ndarray]:
    """True colour of two dates with one shared stretch, so brightness differences stay visible."""
    both = np.concatenate([a.select(RGB_BANDS), b.select(RGB_BANDS)], axis=2)
    valid = np.concatenate([a.valid, b.valid], axis=1)
    img = display_rgb(both, percentiles, valid=valid)
    return img[:, : a.width], img[:, a.width:]


def only_cells(img: np.ndarray, inside: np.ndarray, cell_px: int) -> np.ndarray:
    """RGBA copy of an (H, W, 3) image on a cell grid, transparent on cells where ``inside`` is False.

    Maps and reports show imagery only where cells were analysed, not the lattice's outer slivers.
    """
    alpha = np.repeat(np.repeat(np.where(inside, 255, 0).astype(np.uint8), cell_px, 0), cell_px, 1)
    return np.dstack([img, alpha[: img.shape[0], : img.shape[1]]])


def class_map_rgba(classes: ClassMap, opacity: float = 1.0, scale: int = 1, level: str = "class") -> np.ndarray:
    """(rows*scale, cols*scale, 4) uint8: class (or group) colours, white for cloudy, dark for nodata."""
    rows, cols = classes.status.shape
    out = np.zeros((rows, cols, 4), dtype=np.uint8)
    labels = classes.labels
    colours = CLASS_COLOURS
    if level == "group":
        groups = np.array(group_of_classes(classes.class_names))
        probs = np.nan_to_num(classes.probs)
        gp = np.stack([probs[..., groups == g].sum(-1) for g in range(len(GROUP_COLOURS))], -1)
        labels = np.where(labels >= 0, gp.argmax(-1), -1)
        colours = GROUP_COLOURS
    for k, colour in enumerate(colours):
        out[labels == k] = (*hex_to_rgb(colour), 255)
    out[classes.status == CellStatus.CLOUDY] = CLOUDY_RGBA
    out[classes.status == CellStatus.NODATA] = NODATA_RGBA
    out[classes.area_ha <= 0] = 0
    out[..., 3] = (out[..., 3] * opacity).astype(np.uint8)
    return _upscale(out, scale)


def change_map_rgba(change: ChangeResult, opacity: float = 1.0, scale: int = 1) -> np.ndarray:
    """(rows*scale, cols*scale, 4) uint8: each cell in the colour of its kind (:data:`KIND_COLOURS`)."""
    out = np.zeros(change.kind.shape + (4,), dtype=np.uint8)
    for kind, colour in KIND_COLOURS.items():
        out[change.kind == kind] = (*hex_to_rgb(colour), 255)
    out[..., 3] = (out[..., 3] * opacity).astype(np.uint8)
    return _upscale(out, scale)


SPECTRAL_RGBA = (255, 0, 220, 255)  # magenta: 10 m pixels with spectral change


def spectral_change_rgba(changed: np.ndarray, comparable: np.ndarray, opacity: float = 1.0) -> np.ndarray:
    """(H, W, 4) uint8 at 10 m: magenta where spectral change was found, transparent elsewhere
    (pixels not comparable on both dates stay transparent too)."""
    out = np.zeros(changed.shape + (4,), dtype=np.uint8)
    out[changed & comparable] = SPECTRAL_RGBA
    out[..., 3] = (out[..., 3] * opacity).astype(np.uint8)
    return out


def _upscale(img: np.ndarray, scale: int) -> np.ndarray:
    return img if scale == 1 else np.repeat(np.repeat(img, scale, axis=0), scale, axis=1)


def png_bytes(img: np.ndarray) -> bytes:
    """Encode an (H, W, 3|4) uint8 array as PNG (zlib level 3: a quarter of ``optimize``'s time
    for files about 4% larger, measured on true colour of a real scene)."""
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG", compress_level=3)
    return buf.getvalue()


__all__ = ["joint_true_colour", "spectral_change_rgba", "class_map_rgba", "change_map_rgba", "png_bytes",
           "to_latlon", "cell_image_transform"]


def to_latlon(img: np.ndarray, crs: str, transform, max_side: int = 1200) -> tuple[np.ndarray, tuple[tuple[float, float], tuple[float, float]]]:
    """Warp an (H, W, 3|4) image on a projected grid to a regular lon/lat grid (nearest).

    Returns the RGBA image (transparent outside the source) and its ((south, west),
    (north, east)) bounds, ready for a map image overlay.
    """
    from rasterio.warp import Resampling, calculate_default_transform, reproject

    if img.shape[2] == 3:
        img = np.dstack([img, np.full(img.shape[:2], 255, np.uint8)])
    h, w = img.shape[:2]
    left, top = transform.c, transform.f
    right, bottom = left + w * transform.a, top + h * transform.e
    from rasterio.warp import transform_bounds

    _, south0, _, north0 = transform_bounds(crs, "EPSG:4326", left, bottom, right, top)
    px_m = abs(transform.a)
    res_lat = px_m / 111_320
    res_lon = res_lat / np.cos(np.radians((south0 + north0) / 2))
    dst_tr, dw, dh = calculate_default_transform(crs, "EPSG:4326", w, h, left, bottom, right, top,
                                                 resolution=(res_lon, res_lat))
    scale = max(dw, dh) / max_side
    if scale > 1:
        dw, dh = int(np.ceil(dw / scale)), int(np.ceil(dh / scale))
        dst_tr = dst_tr * dst_tr.scale(scale)
    out = np.zeros((4, dh, dw), dtype=np.uint8)
    for i in range(4):
        reproject(np.ascontiguousarray(img[..., i]), out[i], src_transform=transform, src_crs=crs,
                  dst_transform=dst_tr, dst_crs="EPSG:4326", resampling=Resampling.nearest,
                  src_nodata=None, dst_nodata=0)
    west, north = dst_tr.c, dst_tr.f
    east, south = west + dw * dst_tr.a, north + dh * dst_tr.e
    return out.transpose(1, 2, 0), ((south, west), (north, east))


def cell_image_transform(grid, scale: int):
    """Affine of a class / change image rendered at ``scale`` pixels per cell."""
    return grid.transform @ grid.transform.scale(grid.cell_px / scale)


def map_layers(analysis, scale: int = 4) -> dict:
    """Images of an analysis for web maps, warped to lon/lat as ``(rgba, ((south, west), (north, east)))``:
    ``tc`` (true colour A and B on the scene grid, unwarped, for thumbnails), ``tc_ll`` (true colour A and B,
    only where cells were analysed), ``cls_ll[level]`` (class maps A and B at "group" and "class" level) and
    ``spec_ll`` (10 m spectral change). They depend on the analysis only, not on the change thresholds."""
    a, b, grid = analysis.a, analysis.b, analysis.grid
    tc_a, tc_b = joint_true_colour(a.scene, b.scene)
    inside = a.classes.area_ha > 0
    ptr = cell_image_transform(grid, scale)
    cells_px = np.repeat(np.repeat(inside, grid.cell_px, 0), grid.cell_px, 1)
    spec = spectral_change_rgba(analysis.spectral.changed, analysis.spectral.valid & cells_px)
    return {
        "tc": (tc_a, tc_b),
        "tc_ll": tuple(to_latlon(only_cells(tc, inside, grid.cell_px), grid.crs, grid.transform)
                       for tc in (tc_a, tc_b)),
        "cls_ll": {lv: tuple(to_latlon(class_map_rgba(m, scale=scale, level=lv), grid.crs, ptr)
                             for m in (analysis.change.a, analysis.change.b))
                   for lv in ("group", "class")},
        "spec_ll": to_latlon(spec, grid.crs, grid.transform),
    }


def change_layer(analysis, scale: int = 4) -> tuple[np.ndarray, tuple[tuple[float, float], tuple[float, float]]]:
    """The change state of each cell (red changed, grey unchanged, amber uncertain) warped to lon/lat."""
    return to_latlon(change_map_rgba(analysis.change, scale=scale), analysis.grid.crs,
                     cell_image_transform(analysis.grid, scale))
