"""File writers for an :class:`~lulc_core.pipeline.Analysis`: GeoTIFF, GeoJSON and CSV.

- GeoTIFF per date, one pixel per cell (160 m) on the AOI's UTM grid: band 1 the class
  index (0..9, colour table, nodata 65535), bands 2..11 the calibrated probabilities of the
  classes in model order, stored as uint16 x 10000 with scale 1e-4 (QGIS and rasterio apply it).
- Change GeoTIFFs: ``change_10m.tif`` (spectral change magnitude and 1/0 per 10 m pixel) and
  ``change_cells.tif`` (state, change score, spectral share, kind and P(change) per cell).
- GeoJSON (EPSG:4326): one polygon per cell inside the AOI.
- CSV: the transition table (hectares and cells, with the kind of each transition), class and
  group areas with gains, losses and net change.

The HTML report is :mod:`lulc_core.report`; the whole set (one folder, or one download per kind)
is :mod:`lulc_core.export_set`.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import rasterio
from affine import Affine
from shapely.geometry import mapping

from lulc_core.change import KIND_NAMES, STATE_NAMES, ChangeKind, ChangeResult, ChangeState
from lulc_core.classes import CLASS_COLOURS, hex_to_rgb
from lulc_core.classify import ClassMap
from lulc_core.spectral import CHANGE_SD
from lulc_core.cells import STATUS_NAMES

if TYPE_CHECKING:
    from lulc_core.pipeline import Analysis

CLASS_NODATA = 65535
PROB_SCALE = 10_000


def classmap_profile(classes: ClassMap) -> dict[str, Any]:
    g = classes.grid
    transform = g.transform @ Affine.scale(g.cell_px)
    return dict(driver="GTiff", width=g.cols, height=g.rows, count=1 + len(classes.class_names),
                dtype="uint16", crs=g.crs, transform=transform, nodata=CLASS_NODATA, compress="deflate")


def write_classmap_geotiff(path: str | Path, classes: ClassMap, date_label: str = "") -> Path:
    """Class index + probability bands at one pixel per cell, with colour table and descriptions."""
    path = Path(path)
    labels = classes.labels
    data = np.full((1 + len(classes.class_names),) + labels.shape, CLASS_NODATA, dtype=np.uint16)
    ok = labels >= 0
    data[0][ok] = labels[ok]
    for k in range(len(classes.class_names)):
        band = data[1 + k]
        band[ok] = np.rint(classes.probs[..., k][ok] * PROB_SCALE).astype(np.uint16)
    with rasterio.open(path, "w", **classmap_profile(classes)) as ds:
        ds.write(data)
        ds.set_band_description(1, "class")
        for k, name in enumerate(classes.class_names):
            ds.set_band_description(2 + k, f"p_{name}")
        ds.scales = (1.0,) + (1.0 / PROB_SCALE,) * len(classes.class_names)
        ds.update_tags(classes=",".join(classes.class_names), date=date_label,
                       status=",".join(f"{k}={v}" for k, v in STATUS_NAMES.items()))
        ds.update_tags(1, **{str(k): n for k, n in enumerate(classes.class_names)})
    _write_colour_table_sidecar(path, CLASS_COLOURS)
    return path


def _write_colour_table_sidecar(path: Path, colours: tuple[str, ...]) -> Path:
    """The class band's colour table as a GDAL PAM sidecar (``<file>.aux.xml``).

    GeoTIFF stores a palette only in single-band files; GDAL (QGIS, rasterio) reads the
    palette of band 1 from the sidecar next to the multi-band file.
    """
    entries = "".join('<Entry c1="%d" c2="%d" c3="%d" c4="255"/>' % hex_to_rgb(c) for c in colours)
    aux = path.with_name(path.name + ".aux.xml")
    aux.write_text('<PAMDataset><PAMRasterBand band="1"><ColorInterp>Palette</ColorInterp>'
                   f"<ColorTable>{entries}</ColorTable></PAMRasterBand></PAMDataset>\n")
    return aux


def cell_features(change: ChangeResult) -> dict[str, Any]:
    """GeoJSON FeatureCollection (EPSG:4326), one polygon per cell (or patch) inside the AOI."""
    a, b = change.a, change.b
    grid = a.grid
    la, lb = change.label_a, change.label_b  # the most probable pair of the joint classification
    names, gnames, groups = change.class_names, change.group_names, change.groups
    built = change.built_up_change

    def num(v: float, nd: int = 4) -> float | None:
        return None if not np.isfinite(v) else round(float(v), nd)

    feats = []
    for r, c in zip(*np.nonzero(a.area_ha > 0)):
        ka, kb = int(la[r, c]), int(lb[r, c])
        props = {
            "row": int(r), "col": int(c),
            "class_a": names[ka] if ka >= 0 else None,
            "class_b": names[kb] if kb >= 0 else None,
            "group_a": gnames[groups[ka]] if ka >= 0 else None,
            "group_b": gnames[groups[kb]] if kb >= 0 else None,
            "prob_a": [round(float(p), 4) for p in a.probs[r, c]] if ka >= 0 else None,
            "prob_b": [round(float(p), 4) for p in b.probs[r, c]] if kb >= 0 else None,
            "status_a": STATUS_NAMES[int(a.status[r, c])],
            "status_b": STATUS_NAMES[int(b.status[r, c])],
            "change": STATE_NAMES[int(change.state[r, c])],
            "change_kind": KIND_NAMES[int(change.kind[r, c])],
            "p_change": num(change.p_change[r, c]),
            "p_counted": None if change.p_counted is None else num(change.p_counted[r, c]),
            "transition": change.transition_kind(ka, kb) if ka >= 0 and kb >= 0 else None,
            "change_score": num(change.score[r, c]),
            "spectral_share": num(change.spectral_share[r, c]),
            "conditional_share": None if change.conditional_share is None else num(change.conditional_share[r, c]),
            "built_up_change": num(built[r, c]),
            "area_ha": round(float(a.area_ha[r, c]), 4),
        }
        feats.append({"type": "Feature", "properties": props,
                      "geometry": mapping(grid.to_wgs84(grid.cell_box(int(r), int(c))))})
    return {"type": "FeatureCollection", "class_order": list(names), "group_order": list(gnames),
            "cell_m": grid.cell_px * grid.resolution, "features": feats}


def write_geojson(path: str | Path, change: ChangeResult) -> Path:
    path = Path(path)
    path.write_text(json.dumps(cell_features(change)))
    return path



#: The bands of the change-cells GeoTIFFs (single run and region), in order.
CHANGE_CELL_BANDS = ("change_state", "change_score", "spectral_share", "change_kind", "p_change", "p_counted")


def change_cell_bands(ch: ChangeResult) -> np.ndarray:
    """(len(CHANGE_CELL_BANDS), rows, cols) float32: the cells' state and kind (NaN outside the AOI),
    score, spectral share, P(change) and P(counted change) (NaN without the deep change evidence)."""
    outside = ch.state == ChangeState.OUTSIDE
    p_counted = np.full(ch.state.shape, np.nan) if ch.p_counted is None else ch.p_counted
    return np.stack([np.where(outside, np.nan, ch.state), ch.score, ch.spectral_share,
                     np.where(outside, np.nan, ch.kind), ch.p_change, p_counted]).astype(np.float32)


def write_change_geotiffs(out_dir: str | Path, analysis: Analysis) -> tuple[Path, Path]:
    """``change_10m.tif`` (band 1 spectral change magnitude, band 2 spectral change 1/0, NaN
    where not comparable) and ``change_cells.tif`` (state: changed = the counted kinds, change score,
    spectral share, kind, P(change) of the joint classification)."""
    out_dir = Path(out_dir)
    sp, ch, grid = analysis.spectral, analysis.change, analysis.grid
    p10 = out_dir / "change_10m.tif"
    changed = np.where(sp.valid, sp.changed.astype(np.float32), np.nan)
    with rasterio.open(p10, "w", driver="GTiff", width=grid.width, height=grid.height, count=2,
                       dtype="float32", crs=grid.crs, transform=grid.transform, nodata=float("nan"),
                       compress="deflate") as ds:
        ds.write(np.stack([sp.magnitude.astype(np.float32), changed]))
        ds.set_band_description(1, "spectral_change_magnitude")
        ds.set_band_description(2, "spectral_change")
        ds.update_tags(threshold=f"{sp.threshold:.4f}", method="PIF orthogonal regression of B onto A; "
                       f"RMS of band differences over invariant-pixel noise; threshold mean + {CHANGE_SD:g} sd of the magnitude",
                       gain=",".join(f"{g:.4f}" for g in sp.gain), offset=",".join(f"{o:.2f}" for o in sp.offset),
                       bands=",".join(sp.bands))
    pc = out_dir / "change_cells.tif"
    with rasterio.open(pc, "w", driver="GTiff", width=grid.cols, height=grid.rows, count=len(CHANGE_CELL_BANDS),
                       dtype="float32", crs=grid.crs, transform=grid.transform @ Affine.scale(grid.cell_px),
                       nodata=float("nan"), compress="deflate") as ds:
        ds.write(change_cell_bands(ch))
        for i, name in enumerate(CHANGE_CELL_BANDS, 1):
            ds.set_band_description(i, name)
        ds.update_tags(states=",".join(f"{k}={v}" for k, v in STATE_NAMES.items() if k != ChangeState.OUTSIDE),
                       kinds=",".join(f"{int(k)}={v}" for k, v in KIND_NAMES.items() if k != ChangeKind.OUTSIDE),
                       level=ch.thresholds.level, confidence=str(ch.thresholds.confidence),
                       min_spectral=str(ch.thresholds.min_spectral),
                       min_built_spectral=str(ch.thresholds.min_built_spectral))
    return p10, pc


def write_csvs(out_dir: str | Path, change: ChangeResult) -> tuple[Path, Path, Path]:
    """``transitions.csv`` (from, to, kind, cells, hectares), ``class_areas.csv`` and
    ``group_areas.csv`` (areas per date, gains, losses and net change)."""
    out_dir = Path(out_dir)
    names = change.class_names
    t_path, a_path, g_path = out_dir / "transitions.csv", out_dir / "class_areas.csv", out_dir / "group_areas.csv"
    with open(t_path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["from_class_a", "to_class_b", "kind", "cells", "hectares"])
        for i, fa in enumerate(names):
            for j, tb in enumerate(names):
                w.writerow([fa, tb, change.transition_kind(i, j), int(change.transition_cells[i, j]),
                            f"{change.transition_ha[i, j]:.2f}"])
        w.writerow(["(left out: uncertain)", "", "", "", f"{change.left_out_ha:.2f}"])
    for path, level, area_a, area_b in ((a_path, "class", change.area_a_ha, change.area_b_ha),
                                        (g_path, "group", *_group_areas(change))):
        names_l, gains, losses = change.gains_losses(level)
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow([level, "area_a_ha", "area_b_ha", "gains_ha", "losses_ha", "net_change_ha"])
            for k, name in enumerate(names_l):
                w.writerow([name, f"{area_a[k]:.2f}", f"{area_b[k]:.2f}", f"{gains[k]:.2f}", f"{losses[k]:.2f}",
                            f"{gains[k] - losses[k]:.2f}"])
    return t_path, a_path, g_path


def _group_areas(change: ChangeResult) -> tuple[np.ndarray, np.ndarray]:
    groups = change.groups
    return tuple(np.array([area[groups == g].sum() for g in range(len(change.group_names))])
                 for area in (change.area_a_ha, change.area_b_ha))

