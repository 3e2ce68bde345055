"""Images for people: true colour with a display stretch, class maps and change maps as RGBA.

Rendered as plain arrays / PNG bytes, placed on maps as image overlays (no tile server).
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from lulc_core.bands import RGB_BANDS, display_rgb
from lulc_core.change import CHANGED, OUTSIDE, UNCERTAIN, UNCHANGED, ChangeResult
from lulc_core.classes import CLASS_COLOURS, hex_to_rgb
from lulc_core.classify import ClassMap
from lulc_core.patches import CLOUDY, NODATA, OK
from lulc_core.scene import Scene

CLOUDY_RGBA = (255, 255, 255, 230)
NODATA_RGBA = (40, 40, 40, 200)
STATE_COLOURS = {UNCHANGED: "#d9d9d9", CHANGED: "#e4003a", UNCERTAIN: "#f2b134", OUTSIDE: "#00000000"}
STATUS_LABELS = {"cloudy": "#ffffff", "no data": "#282828"}


def true_colour(scene: Scene, percentiles: tuple[float, float] = (2, 98)) -> np.ndarray:
    """(H, W, 3) uint8 true colour of a Scene (B04, B03, B02) with a percentile stretch."""
    return display_rgb(scene.select(RGB_BANDS), percentiles, valid=scene.valid)


def joint_true_colour(a: Scene, b: Scene, percentiles: tuple[float, float] = (2, 98)) -> tuple[np.ndarray, np.ndarray]:
    """True colour of two dates with one shared stretch, so brightness differences stay visible."""
    both = np.concatenate([a.select(RGB_BANDS), b.select(RGB_BANDS)], axis=2)
    valid = np.concatenate([a.valid, b.valid], axis=1)
    img = display_rgb(both, percentiles, valid=valid)
    return img[:, : a.width], img[:, a.width:]


def class_map_rgba(classes: ClassMap, opacity: float = 1.0, scale: int = 1) -> np.ndarray:
    """(rows*scale, cols*scale, 4) uint8: class colours, white for cloudy, dark for nodata."""
    rows, cols = classes.status.shape
    out = np.zeros((rows, cols, 4), dtype=np.uint8)
    labels = classes.labels
    for k, colour in enumerate(CLASS_COLOURS):
        out[labels == k] = (*hex_to_rgb(colour), 255)
    out[classes.status == CLOUDY] = CLOUDY_RGBA
    out[classes.status == NODATA] = NODATA_RGBA
    out[classes.area_ha <= 0] = 0
    out[..., 3] = (out[..., 3] * opacity).astype(np.uint8)
    return _upscale(out, scale)


def change_map_rgba(change: ChangeResult, opacity: float = 1.0, scale: int = 1) -> np.ndarray:
    """(rows*scale, cols*scale, 4) uint8: changed red, unchanged grey, uncertain amber."""
    out = np.zeros(change.state.shape + (4,), dtype=np.uint8)
    for state, colour in STATE_COLOURS.items():
        if state != OUTSIDE:
            out[change.state == state] = (*hex_to_rgb(colour), 255)
    out[..., 3] = (out[..., 3] * opacity).astype(np.uint8)
    return _upscale(out, scale)


def _upscale(img: np.ndarray, scale: int) -> np.ndarray:
    return img if scale == 1 else np.repeat(np.repeat(img, scale, axis=0), scale, axis=1)


def png_bytes(img: np.ndarray) -> bytes:
    """Encode an (H, W, 3|4) uint8 array as PNG."""
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def patch_thumbnail(rgb: np.ndarray, row: int, col: int, patch_px: int = 64, scale: int = 2) -> np.ndarray:
    """The (64*scale)^2 true-colour crop of one patch from a rendered image."""
    crop = rgb[row * patch_px:(row + 1) * patch_px, col * patch_px:(col + 1) * patch_px]
    return _upscale(crop, scale)


__all__ = ["true_colour", "joint_true_colour", "class_map_rgba", "change_map_rgba", "png_bytes",
           "patch_thumbnail", "OK"]
