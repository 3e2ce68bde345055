"""Layers for the offline maps of :mod:`ui.offline_map`: images as PNG ``data:`` URLs (with their checks
and the optional Web-Mercator row resampling), large PNGs served once by the app's own server instead
(:mod:`ui.served_images`), GeoJSON embedded in the page, and the legend. Nothing here loads from
another server or needs jQuery."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import folium
import leafmap.foliumap as leafmap
import numpy as np
from branca.utilities import write_png

from ui.served_images import served_image_url

__all__ = ["add_image_overlay", "add_geojson", "add_legend", "image_data_url", "image_url", "image_overlay",
           "checked_bounds"]

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _to_rgba_uint8(arr: np.ndarray) -> np.ndarray:
    a = np.asarray(arr)
    if a.dtype != np.uint8:
        raise TypeError(f"image array must be uint8, got {a.dtype}")
    if a.ndim == 2:  # grey
        a = np.repeat(a[:, :, None], 3, axis=2)
    if a.ndim != 3 or a.shape[2] not in (3, 4) or a.shape[0] == 0 or a.shape[1] == 0:
        raise ValueError(f"image array must be HxW, HxWx3 or HxWx4, got shape {a.shape}")
    if a.shape[2] == 3:
        # Add an opaque alpha ourselves: branca's write_png would turn an RGB uint8
        # array into float and stretch every channel to its own maximum.
        a = np.concatenate([a, np.full(a.shape[:2] + (1,), 255, np.uint8)], axis=2)
    return np.ascontiguousarray(a)


def _mercator_rows(rgba: np.ndarray, south: float, north: float) -> np.ndarray:
    """Resample rows (nearest neighbour, keeps class colours exact) from a regular
    latitude grid (row 0 = north) to a regular Web-Mercator y grid."""

    def merc_y(lat: np.ndarray | float) -> np.ndarray:
        return np.log(np.tan(np.pi / 4 + np.radians(lat) / 2))

    h = rgba.shape[0]
    y = np.linspace(merc_y(north), merc_y(south), h, endpoint=False) + (
        merc_y(south) - merc_y(north)
    ) / (2 * h)
    lat = np.degrees(2 * np.arctan(np.exp(y)) - np.pi / 2)
    src = np.clip(((north - lat) / (north - south) * h).astype(int), 0, h - 1)
    return rgba[src]


def image_data_url(image: np.ndarray | bytes, bounds: list[list[float]], mercator_project: bool) -> str:
    """``image`` (a uint8 array, see :func:`add_image_overlay`, or PNG bytes) as a ``data:image/png;base64``
    URL; ``mercator_project`` resamples an array's rows to Web Mercator within ``bounds`` (from
    :func:`checked_bounds`)."""
    if isinstance(image, (bytes, bytearray, memoryview)):
        png = bytes(image)
        if not png.startswith(_PNG_SIGNATURE):
            raise ValueError("image bytes are not a PNG (bad signature)")
        if mercator_project:
            raise ValueError("mercator_project needs a numpy array, not PNG bytes")
    else:
        rgba = _to_rgba_uint8(image)
        if mercator_project:
            rgba = _mercator_rows(rgba, bounds[0][0], bounds[1][0])
        png = write_png(rgba)  # uint8 RGBA is written as-is
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def image_url(image: np.ndarray | bytes, bounds: list[list[float]], mercator_project: bool) -> str:
    """The URL a map loads ``image`` from: PNG bytes of :data:`ui.served_images.MIN_BYTES` or more are
    served once by the app (:func:`~ui.served_images.served_image_url`), anything else, or where serving
    is not possible, is inlined (:func:`image_data_url`)."""
    if isinstance(image, (bytes, bytearray, memoryview)) and not mercator_project:
        png = bytes(image)
        if png.startswith(_PNG_SIGNATURE) and (url := served_image_url(png)):
            return url
    return image_data_url(image, bounds, mercator_project)


def image_overlay(url: str, bounds: list[list[float]], **kwargs: Any) -> folium.raster_layers.ImageOverlay:
    """``folium.raster_layers.ImageOverlay`` of an image at ``url`` (from :func:`image_url`). folium
    reads a string without a scheme as a local file to inline, so a path of this server (``/app/...``)
    is set after construction."""
    layer = folium.raster_layers.ImageOverlay(image="data:,", bounds=bounds, **kwargs)
    layer.url = url
    return layer


def checked_bounds(bounds_latlon: Any) -> list[list[float]]:
    """``((south, west), (north, east))`` in degrees as ``[[south, west], [north, east]]`` floats, or ValueError."""
    try:
        (south, west), (north, east) = bounds_latlon
        south, west, north, east = map(float, (south, west, north, east))
    except (TypeError, ValueError) as exc:
        raise ValueError(
            "bounds_latlon must be ((south, west), (north, east)) in degrees"
        ) from exc
    if not (-90 <= south < north <= 90 and -180 <= west <= 180 and -180 <= east <= 180):
        raise ValueError(
            f"bounds_latlon must be ((south, west), (north, east)), got {bounds_latlon!r}"
        )
    return [[south, west], [north, east]]


def add_image_overlay(
    m: folium.Map,
    rgba_png_or_array: np.ndarray | bytes,
    bounds_latlon,
    name: str,
    opacity: float = 0.7,
    *,
    show: bool = True,
    mercator_project: bool = False,
    **options: Any,
) -> folium.raster_layers.ImageOverlay:
    """Add an image overlay (no tile server): a ``data:image/png;base64`` URL, or for PNG bytes of
    :data:`ui.served_images.MIN_BYTES` or more a file served by the app (:func:`image_url`).

    ``rgba_png_or_array`` is a uint8 numpy array (HxW grey, HxWx3 RGB or HxWx4 RGBA,
    row 0 = north) or the bytes of a PNG file.  ``bounds_latlon`` is
    ``((south, west), (north, east))``.  ``mercator_project=True`` (arrays only)
    resamples rows from a regular lat/lon grid to Web Mercator (nearest neighbour);
    irrelevant for small AOIs.  An inlined PNG travels inside the map HTML, so keep arrays
    modest (a few hundred pixels a side).  ``m`` may also be a ``folium.FeatureGroup``;
    ``options`` are further Leaflet options (e.g. :func:`ui.compare_maps.layer_options`).
    """
    if not 0.0 <= float(opacity) <= 1.0:
        raise ValueError(f"opacity must be within [0, 1], got {opacity}")
    bounds = checked_bounds(bounds_latlon)
    layer = image_overlay(
        image_url(rgba_png_or_array, bounds, mercator_project),
        bounds=bounds,
        name=name,
        opacity=float(opacity),
        show=show,
        interactive=False,
        pixelated=True,
        **options,
    )
    layer.add_to(m)
    return layer


def add_geojson(
    m: folium.Map,
    data: Any,
    name: str,
    style: Mapping[str, Any] | Callable[[dict], dict] | None = None,
    *,
    tooltip_fields: list[str] | None = None,
    tooltip_aliases: list[str] | None = None,
    pane: str | None = None,
    **options: Any,
) -> folium.GeoJson:
    """Add GeoJSON embedded in the map (never fetched by URL, never via jQuery).

    ``data`` is a GeoJSON dict, a JSON string, a path to a .geojson file, or an object
    with ``__geo_interface__`` (shapely, geopandas).  ``style`` is a Leaflet path style
    dict (``{"color": "#e31a1c", "weight": 2, "fillOpacity": 0.1}``) applied to every
    feature, or a ``feature -> dict`` function.  ``tooltip_fields`` adds a
    ``GeoJsonTooltip`` (plain Leaflet; ``folium.Popup`` would need jQuery), labelled with
    ``tooltip_aliases`` when given (e.g. "Date A class" for ``class_a``). ``pane`` is the Leaflet
    map pane to draw in (e.g. ``"shadowPane"``, above the image overlays and the swipe map's panes);
    ``options`` are further Leaflet options (e.g. :func:`ui.compare_maps.layer_options`).
    """
    if hasattr(data, "__geo_interface__"):
        data = data.__geo_interface__
    elif isinstance(data, os.PathLike):
        data = json.loads(Path(data).read_text(encoding="utf-8"))
    elif isinstance(data, str):
        stripped = data.lstrip()
        if stripped.startswith(("{", "[")):
            data = json.loads(stripped)
        elif "://" in data:
            raise ValueError("add_geojson does not fetch URLs (offline map); pass the data")
        else:
            data = json.loads(Path(data).read_text(encoding="utf-8"))
    if not isinstance(data, Mapping) or "type" not in data:
        raise ValueError("data is not GeoJSON (expected a mapping with a 'type' key)")

    if style is None:
        style_function = None
    elif callable(style):
        style_function = style
    else:
        style_dict = dict(style)
        style_function = lambda _feature: style_dict  # noqa: E731

    tooltip = (folium.GeoJsonTooltip(fields=list(tooltip_fields),
                                     aliases=list(tooltip_aliases) if tooltip_aliases else None)
               if tooltip_fields else None)
    layer = folium.GeoJson(
        data=dict(data),
        name=name,
        style_function=style_function,
        tooltip=tooltip,
        embed=True,
        **({"pane": pane} if pane else {}),
        **options,
    )
    layer.add_to(m)
    return layer


def add_legend(m: leafmap.Map, title: str, items: list[tuple[str, str]]) -> None:
    """A legend box on the map (leafmap's, as a plain Leaflet control: no jQuery, no CDN).
    ``items`` are ``(colour, label)`` pairs."""
    m.add_legend(title=title, legend_dict={label: colour for colour, label in items}, draggable=False,
                 position="bottomright", style={"font-size": "11px", "padding": "4px", "line-height": "1.1"})
