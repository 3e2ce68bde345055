"""What the Compare page derives from the session's analysis, built once each and kept in the session.

The map images and their PNG bytes and the per-window probabilities are kept per analysis; the
change layer and the downloads, which depend on the thresholds too, per analysis and thresholds (only
the latest kept). The analysis re-compared at the page's thresholds is cheap and not kept. Everything
is a ``lulc_core`` call; like :mod:`ui.session`, this module imports no map library.
"""

from __future__ import annotations

from typing import Any, Callable, Hashable, TypeVar

import numpy as np
import streamlit as st

from lulc_core.cells import classify_window
from lulc_core.change import ChangeThresholds
from lulc_core.export_set import download_makers
from lulc_core.pipeline import Analysis
from lulc_core.render import change_layer, map_layers, png_bytes
from ui.session import get_classifier

T = TypeVar("T")


def current_analysis(thresholds: ChangeThresholds | None = None) -> Analysis | None:
    """The session's analysis, re-compared with the chosen thresholds (cheap, no reclassification)."""
    an = st.session_state.get("analysis")
    if an is None or thresholds is None or thresholds == an.change.thresholds:
        return an
    return an.recompare(thresholds)


def _once(cache: dict, name: Hashable, build: Callable[[], T]) -> T:
    if name not in cache:
        cache[name] = build()
    return cache[name]


def _analysis_cache(key: str) -> dict[str, Any]:
    """What the Compare page built from the analysis ``key``; emptied when the analysis changes."""
    cache = st.session_state.setdefault("_compare_cache", {})
    if cache.get("key") != key:
        cache.clear()
        cache["key"] = key
    return cache


def _thresholds_cache(key: str, thresholds: ChangeThresholds) -> dict[str, Any]:
    """What the Compare page built from the analysis ``key`` at these thresholds (only the latest kept)."""
    cache = _analysis_cache(key).setdefault("by_thresholds", {})
    if cache.get("thresholds") != thresholds:
        cache.clear()
        cache["thresholds"] = thresholds
    return cache


def map_images(key: str, analysis: Analysis) -> dict:
    """The analysis' map images (:func:`lulc_core.render.map_layers`), rendered once per analysis:
    they depend neither on the thresholds nor on the widgets."""
    return _once(_analysis_cache(key), "layers", lambda: map_layers(analysis))


def map_pngs(key: str, analysis: Analysis) -> dict:
    """The map images of :func:`map_images` (``tc_ll``, ``cls_ll``, ``spec_ll``) as PNG bytes, encoded once per
    analysis (the maps take PNG bytes, so a rerun does not encode them again)."""
    def build() -> dict:
        images = map_images(key, analysis)
        return {"tc_ll": tuple(png_bytes(img) for img, _ in images["tc_ll"]),
                "cls_ll": {lv: tuple(png_bytes(img) for img, _ in pair) for lv, pair in images["cls_ll"].items()},
                "spec_ll": png_bytes(images["spec_ll"][0])}
    return _once(_analysis_cache(key), "pngs", build)


def change_state_png(key: str, analysis: Analysis) -> bytes:
    """:func:`change_state_image` as PNG bytes, once per analysis and thresholds."""
    return _once(_thresholds_cache(key, analysis.change.thresholds), "change_png",
                 lambda: png_bytes(change_state_image(key, analysis)[0]))


def map_home(key: str) -> dict | None:
    """The view the Compare maps of analysis ``key`` open at: a shared link's ``{"center", "zoom"}``, or
    None (fit to the area). After that the maps keep their view in the browser."""
    return st.session_state.get("map_home", {}).get(key)


def change_state_image(key: str, analysis: Analysis) -> tuple[np.ndarray, tuple[tuple[float, float], ...]]:
    """The change state layer (:func:`lulc_core.render.change_layer`), once per analysis and thresholds."""
    return _once(_thresholds_cache(key, analysis.change.thresholds), "change_ll", lambda: change_layer(analysis))


def download_files(key: str, analysis: Analysis) -> dict[str, tuple[Callable[[], bytes], str, str]]:
    """The downloads (:func:`lulc_core.export_set.download_makers`): each file made when first asked for,
    once per analysis and thresholds (a page run does not build them)."""
    return _once(_thresholds_cache(key, analysis.change.thresholds), "downloads",
                 lambda: download_makers(analysis, get_classifier().meta))


def window_probabilities(key: str, analysis: Analysis, y0: int, x0: int) -> tuple[np.ndarray | None, ...]:
    """The per-window model's probabilities of the 640 m window at ``(y0, x0)`` on dates A and B
    (None where too little data), once per window and analysis."""
    clf = get_classifier()
    return _once(_analysis_cache(key).setdefault("details", {}), (y0, x0),
                 lambda: tuple(classify_window(clf, d.scene, y0, x0) for d in (analysis.a, analysis.b)))
