"""Exports of an :class:`~lulc_core.pipeline.Analysis`: GeoTIFF, GeoJSON, CSV and an HTML report.

- GeoTIFF per date, one pixel per cell (160 m) on the AOI's UTM grid: band 1 the class
  index (0..9, colour table, nodata 65535), bands 2..11 the calibrated probabilities of the
  classes in model order, stored as uint16 x 10000 with scale 1e-4 (QGIS and rasterio apply it).
- Change GeoTIFFs: ``change_10m.tif`` (spectral change magnitude and 1/0 per 10 m pixel) and
  ``change_cells.tif`` (state, change score, spectral share per cell).
- GeoJSON (EPSG:4326): one polygon per cell inside the AOI.
- CSV: the transition table (hectares and cells, with the kind of each transition), class and
  group areas with gains, losses and net change.
- HTML: a self-contained report (images inlined, no network needed to open it).

:func:`export_all` writes the whole set into a temporary folder beside the destination and moves
it into place only once complete, so a run that fails midway leaves earlier results whole.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import html
import io
import json
import os
import shutil
import stat
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Callable

import numpy as np
import rasterio
from affine import Affine
from shapely.geometry import mapping

from lulc_core.change import STATE_NAMES, ChangeState, ChangeResult, measured_change_skill
from lulc_core.classes import CLASS_COLOURS, hex_to_rgb
from lulc_core.classify import ClassMap
from lulc_core.errors import LulcError
from lulc_core.cells import STATUS_NAMES

CLASS_NODATA = 65535
PROB_SCALE = 10_000


def classmap_profile(classes: ClassMap) -> dict[str, Any]:
    g = classes.grid
    transform = g.transform @ Affine.scale(g.cell_px)
    return dict(driver="GTiff", width=g.cols, height=g.rows, count=1 + len(classes.class_names),
                dtype="uint16", crs=g.crs, transform=transform, nodata=CLASS_NODATA, compress="deflate")


def write_classmap_geotiff(path: str | Path, classes: ClassMap, date_label: str = "") -> Path:
    """Class index + probability bands at one pixel per patch, with colour table and descriptions."""
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
    la, lb = a.labels, b.labels
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
            "transition": change.transition_kind(ka, kb) if ka >= 0 and kb >= 0 else None,
            "change_score": num(change.score[r, c]),
            "spectral_share": num(change.spectral_share[r, c]),
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


def write_change_geotiffs(out_dir: str | Path, analysis) -> tuple[Path, Path]:
    """``change_10m.tif`` (band 1 spectral change magnitude, band 2 spectral change 1/0, NaN
    where not comparable) and ``change_cells.tif`` (state, change score, spectral share)."""
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
                       "RMS of band differences over invariant-pixel noise; threshold mean + 2 sd of the magnitude",
                       gain=",".join(f"{g:.4f}" for g in sp.gain), offset=",".join(f"{o:.2f}" for o in sp.offset),
                       bands=",".join(sp.bands))
    pc = out_dir / "change_cells.tif"
    state = np.where(ch.state == 3, 255, ch.state).astype(np.float32)
    with rasterio.open(pc, "w", driver="GTiff", width=grid.cols, height=grid.rows, count=3, dtype="float32",
                       crs=grid.crs, transform=grid.transform @ Affine.scale(grid.cell_px), nodata=float("nan"),
                       compress="deflate") as ds:
        ds.write(np.stack([np.where(ch.state == 3, np.nan, state), ch.score.astype(np.float32),
                           ch.spectral_share.astype(np.float32)]))
        for i, name in enumerate(("change_state", "change_score", "spectral_share"), 1):
            ds.set_band_description(i, name)
        ds.update_tags(states=",".join(f"{k}={v}" for k, v in STATE_NAMES.items() if k != ChangeState.OUTSIDE),
                       level=ch.thresholds.level, confidence=str(ch.thresholds.confidence),
                       min_spectral=str(ch.thresholds.min_spectral))
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


# -- HTML report ----------------------------------------------------------------------------

def _img(png: bytes, alt: str, width: int = 420) -> str:
    return (f'<img alt="{html.escape(alt)}" width="{width}" style="image-rendering:pixelated;border:1px solid #ccc" '
            f'src="data:image/png;base64,{base64.b64encode(png).decode()}">')


def _bars_svg(names: tuple[str, ...], a: np.ndarray, b: np.ndarray, labels: tuple[str, str]) -> str:
    """A grouped horizontal bar chart as inline SVG (no JavaScript, no network)."""
    row_h, left, width = 26, 170, 360
    top = max(float(max(a.max(initial=0), b.max(initial=0))), 1e-9)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 90}" height="{row_h * len(names) + 30}" '
             'font-family="sans-serif" font-size="12">']
    for i, name in enumerate(names):
        y = 10 + i * row_h
        parts.append(f'<text x="{left - 6}" y="{y + 14}" text-anchor="end">{html.escape(name)}</text>')
        for k, (vals, colour) in enumerate(((a, "#7f9fbf"), (b, "#1b3f8f"))):
            w = width * float(vals[i]) / top
            parts.append(f'<rect x="{left}" y="{y + k * 11}" width="{w:.1f}" height="10" fill="{colour}"/>')
            parts.append(f'<text x="{left + w + 4:.1f}" y="{y + k * 11 + 9}" font-size="10">{vals[i]:,.0f}</text>')
    ly = 10 + len(names) * row_h
    parts.append(f'<rect x="{left}" y="{ly}" width="10" height="10" fill="#7f9fbf"/>'
                 f'<text x="{left + 14}" y="{ly + 9}">{html.escape(labels[0])}</text>'
                 f'<rect x="{left + 150}" y="{ly}" width="10" height="10" fill="#1b3f8f"/>'
                 f'<text x="{left + 164}" y="{ly + 9}">{html.escape(labels[1])}</text></svg>')
    return "".join(parts)


def _matrix_table(names: tuple[str, ...], m: np.ndarray, kind=None) -> str:
    top = max(float(m.max()), 1e-9)
    head = "".join(f"<th>{html.escape(n)}</th>" for n in names)
    rows = []
    for i, n in enumerate(names):
        cells = []
        for j, v in enumerate(m[i]):
            k = kind(i, j) if kind else ("no change" if i == j else "land-cover change")
            colour = ("228,0,58" if k == "land-cover change" else "242,177,52") if i != j else "0,0,0"
            alpha = 0.08 + 0.6 * v / top if i != j and v > 0 else 0
            title = f' title="{html.escape(k)}"' if i != j else ""
            cells.append(f'<td{title} style="background:rgba({colour},{alpha:.2f});'
                         f'{"font-weight:bold" if i == j else ""}">{v:,.0f}</td>')
        rows.append(f"<tr><th>{html.escape(n)}</th>{''.join(cells)}</tr>")
    return f'<table class="m"><tr><th>A \\ B (ha)</th>{head}</tr>{"".join(rows)}</table>'


def _gains_table(change: ChangeResult, level: str) -> str:
    names, gains, losses = change.gains_losses(level)
    rows = "".join(f"<tr><th>{html.escape(n)}</th><td>+{g:,.1f}</td><td>-{lo:,.1f}</td><td>{g - lo:+,.1f}</td></tr>"
                   for n, g, lo in zip(names, gains, losses))
    return (f'<table class="m"><tr><th>{level}</th><th>gains (ha)</th><th>losses (ha)</th><th>net (ha)</th></tr>'
            f"{rows}</table>")


def change_rule_text(thresholds) -> str:
    """The change decision in one paragraph (dashboard and report)."""
    level = "land-cover group" if thresholds.level == "group" else "class"
    return (f"A cell is <b>changed</b> when its top {level} differs between the dates, both dates are confident "
            f"(top {level} probability at least {thresholds.confidence:.2f}) and at least "
            f"{100 * thresholds.min_spectral:.0f}% of its comparable 10 m pixels show spectral change (date B "
            "normalised onto date A by regression on pseudo-invariant pixels; a pixel changes above the "
            "scene's mean + 2 standard deviations of the change magnitude, an unsupervised threshold). "
            "<b>Uncertain</b>: cloudy or no data on either date, or not confident. Class flips inside a group "
            "(for example crop rotation / season) and flips without spectral support are not counted as change. "
            "Change score (0..1): the share of the cell's 10 m pixels with spectral change.")


def change_skill_text(skill: dict | None) -> str:
    """What the change evaluation measured, in one sentence ('' when no figures are shipped)."""
    if not skill:
        return ""
    return (f"Measured on OSCD urban change maps, areas held out ({skill['patches']} patches of 640 m, "
            f"{skill['truly_changed']} truly changed): change score AUROC {skill['auroc']:.2f}, F1 of "
            f"'changed' {skill['f1']:.2f}; 160 m cells: AUROC {skill['cell_auroc']:.2f}, F1 {skill['cell_f1']:.2f} "
            f"(spectral baseline AUROC {skill['baseline_auroc']:.2f}). See docs/CHANGE_EVALUATION.md.")


def html_report(analysis, model_meta=None) -> str:
    """A self-contained HTML report of an analysis (all images inlined as data URLs)."""
    from lulc_core.render import (change_map_rgba, class_map_rgba, joint_true_colour, legend_html, legend_items,
                                  only_cells, png_bytes, spectral_change_rgba)

    ch = analysis.change
    a, b = analysis.a, analysis.b
    grid = analysis.grid
    inside = a.classes.area_ha > 0
    tc_a, tc_b = (only_cells(tc, inside, grid.cell_px) for tc in joint_true_colour(a.scene, b.scene))
    scale = max(grid.cell_px // 8, 1)
    la, lb = f"A: {a.scene.label}", f"B: {b.scene.label}"
    areas = ch.state_areas_ha()
    skill_note = change_skill_text(measured_change_skill())
    legend = legend_html(legend_items("class", extras=False))
    glegend = legend_html(legend_items("group", extras=False))
    acc = ""
    if model_meta is not None:
        from lulc_core.model.classifier import model_figures

        m = model_figures(model_meta)
        acc = (f"{model_meta.architecture} ({model_meta.stem} stem), {m['mode']}: test accuracy "
               f"{100 * m['accuracy']:.2f}% on {m['n_images'] or '?'} held-out EuroSAT images, "
               f"ECE {m['ece_after']:.3f} after temperature scaling")
    w, s, e, n = analysis.aoi.bounds
    season = analysis.season_note
    season_html = f'<p class="note"><b>{html.escape(season)}</b></p>' if season else ""
    spec = spectral_change_rgba(analysis.spectral.changed, analysis.spectral.valid)
    spec_on_tc = tc_a.copy()
    hit = spec[..., 3] > 0
    spec_on_tc[hit, :3] = spec[hit, :3]
    thr = ch.thresholds
    cell_m = grid.cell_px * grid.resolution
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>LULC change report: {html.escape(analysis.aoi.name)}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}}
.pair{{display:flex;gap:16px;flex-wrap:wrap}} .pair figure{{margin:0}}
table{{border-collapse:collapse;font-size:12px;margin:6px 0}} td,th{{border:1px solid #ccc;padding:3px 6px;text-align:right}}
.m th{{background:#f4f4f4}} .note{{background:#fff8e1;padding:8px 12px;border-left:4px solid #f2b134}}
.head td{{font-size:15px}}</style>
</head><body>
<h1>Land-cover change: {html.escape(analysis.aoi.name)}</h1>
<p>Generated {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC by LULC Change Explorer.</p>
<h2>Headline ({'land-cover groups' if thr.level == 'group' else 'classes'})</h2>
<table class="head"><tr><th>changed</th><td>{areas['changed']:,.1f} ha</td></tr>
<tr><th>unchanged</th><td>{areas['unchanged']:,.1f} ha</td></tr>
<tr><th>of which class changes inside a group</th><td>{ch.within_group_ha:,.1f} ha</td></tr>
<tr><th>of which flips without spectral support</th><td>{ch.unsupported_flip_ha:,.1f} ha</td></tr>
<tr><th>uncertain (left out of the tables)</th><td>{areas['uncertain']:,.1f} ha</td></tr></table>
{season_html}
<p>{change_rule_text(thr)}</p>
<h2>Area and data</h2>
<ul><li>AOI: {analysis.aoi.area_ha:,.1f} ha, bounds W {w:.5f}, S {s:.5f}, E {e:.5f}, N {n:.5f};
grid {grid.crs}, {grid.rows} x {grid.cols} cells of {cell_m:.0f} m (each classified from the 640 m window around it)</li>
<li>Date A: window {a.window}, imagery {html.escape(a.scene.label)}</li>
<li>Date B: window {b.window}, imagery {html.escape(b.scene.label)}</li>
<li>Data source: {html.escape(analysis.provider)}; processing units spent: {analysis.processing_units:g}</li>
<li>Model: {html.escape(acc) or 'EuroSAT ResNet'}</li></ul>
<h2>True colour</h2><div class="pair"><figure>{_img(png_bytes(tc_a), la)}<figcaption>{html.escape(la)}</figcaption></figure>
<figure>{_img(png_bytes(tc_b), lb)}<figcaption>{html.escape(lb)}</figcaption></figure></div>
<h2>Land-cover groups</h2><p>{glegend}; white = cloudy, dark = no data.</p>
<div class="pair"><figure>{_img(png_bytes(class_map_rgba(a.classes, scale=scale, level='group')), 'group map A')}<figcaption>{html.escape(la)}</figcaption></figure>
<figure>{_img(png_bytes(class_map_rgba(b.classes, scale=scale, level='group')), 'group map B')}<figcaption>{html.escape(lb)}</figcaption></figure></div>
<h2>Class maps</h2><p>{legend}</p>
<div class="pair"><figure>{_img(png_bytes(class_map_rgba(a.classes, scale=scale)), 'class map A')}<figcaption>{html.escape(la)}</figcaption></figure>
<figure>{_img(png_bytes(class_map_rgba(b.classes, scale=scale)), 'class map B')}<figcaption>{html.escape(lb)}</figcaption></figure></div>
<h2>Change</h2><div class="pair"><figure>{_img(png_bytes(change_map_rgba(ch, scale=scale)), 'change map')}
<figcaption>red = changed, grey = unchanged, amber = uncertain</figcaption></figure>
<figure>{_img(png_bytes(spec_on_tc), '10 m spectral change')}<figcaption>magenta = 10 m pixels with spectral change
(threshold {analysis.spectral.threshold:.2f}), over date A</figcaption></figure></div>
<h2>Transitions between groups (hectares)</h2>{_matrix_table(ch.group_names, ch.group_transition_ha)}
<p>Counted: {ch.compared_ha:,.1f} ha confident on both dates; left out: {ch.left_out_ha:,.1f} ha uncertain.</p>
<h2>Gains and losses</h2><div class="pair">{_gains_table(ch, 'group')}{_gains_table(ch, 'class')}</div>
<h2>Transitions between classes (hectares)</h2><p>Amber: changes inside one group (e.g. crop rotation / season),
not counted as land-cover change at group level. Red: land-cover change.</p>{_matrix_table(ch.class_names, ch.transition_ha, ch.transition_kind)}
<h2>Class areas</h2>{_bars_svg(ch.class_names, ch.area_a_ha, ch.area_b_ha, (la[:40], lb[:40]))}
<h2>Limits to keep in mind</h2><div class="note"><ul>
<li>Each {cell_m:.0f} m cell is classified from the 640 m window around it into one of 10 EuroSAT classes; mixed areas get mixed probabilities.</li>
<li>The model was trained on Level-1C (top-of-atmosphere) imagery; Level-2A input is out of its domain.</li>
<li>Seasons matter: bare winter fields and summer crops look different; compare similar seasons where possible.</li>
<li>Check changed cells visually; the spectral evidence also reacts to moisture, shadows and misregistration.</li>
{f'<li>{html.escape(skill_note)}</li>' if skill_note else ''}{''.join(f'<li>{html.escape(x)}</li>' for x in analysis.notes)}</ul></div>
<p style="font-size:11px;color:#666">Contains modified Copernicus Sentinel data. EuroSAT: Helber et al., 2019.</p>
</body></html>"""


#: Every file :func:`export_all` writes (a folder holding only these is a previous result set).
EXPORT_NAMES = ("classes_a.tif", "classes_a.tif.aux.xml", "classes_b.tif", "classes_b.tif.aux.xml",
                "cells.geojson", "transitions.csv", "class_areas.csv", "group_areas.csv", "change_10m.tif",
                "change_cells.tif", "report.html")


ZIP_MIME = "application/zip"


def _export_kinds(analysis, model_meta=None) -> list[tuple[str, Callable[[Path], list[Path]], str, str]]:
    """Every export, kind by kind: ``(label, write(folder) -> files, download name, MIME type)``; the
    download is a zip of the kind's files, or the one file itself. :func:`export_all` writes them all
    into one folder, :func:`download_bundles` one download each."""
    ch = analysis.change

    def classes(date, name: str) -> Callable[[Path], list[Path]]:
        def write(out: Path) -> list[Path]:
            tif = write_classmap_geotiff(out / name, date.classes, str(date.window))
            return [tif, tif.with_name(tif.name + ".aux.xml")]
        return write

    def report(out: Path) -> list[Path]:
        path = out / "report.html"
        path.write_text(html_report(analysis, model_meta), encoding="utf-8")
        return [path]

    return [
        ("Classes date A", classes(analysis.a, "classes_a.tif"), "classes_a.zip", ZIP_MIME),
        ("Classes date B", classes(analysis.b, "classes_b.tif"), "classes_b.zip", ZIP_MIME),
        ("Change GeoTIFFs", lambda out: list(write_change_geotiffs(out, analysis)), "change.zip", ZIP_MIME),
        ("GeoJSON cells", lambda out: [write_geojson(out / "cells.geojson", ch)], "cells.geojson",
         "application/geo+json"),
        ("Tables (CSV)", lambda out: list(write_csvs(out, ch)), "tables.zip", ZIP_MIME),
        ("HTML report", report, "report.html", "text/html"),
    ]


def _write_all(analysis, out: Path, model_meta=None) -> list[Path]:
    return [path for _, write, _, _ in _export_kinds(analysis, model_meta) for path in write(out)]


def publish_folder(tmp: Path, out: Path) -> None:
    """Move the complete result set in ``tmp`` to ``out``.

    ``out`` absent: one rename. ``out`` holding only an earlier result set: swapped whole (the old
    set is renamed aside, the new one renamed in, the old one deleted; a failure puts the old set
    back). ``out`` holding other files too: each result file replaced by rename, other files kept.
    """
    if not out.exists():
        os.rename(tmp, out)
        return
    if set(os.listdir(out)) <= set(EXPORT_NAMES) and out != Path.cwd().resolve():
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
        os.rename(out, old / "set")
        try:
            os.rename(tmp, out)
        except BaseException:
            os.rename(old / "set", out)
            raise
        shutil.rmtree(old, ignore_errors=True)
        return
    for f in sorted(tmp.iterdir()):
        os.replace(f, out / f.name)
    shutil.rmtree(tmp, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def export_all(analysis, out_dir: str | Path, model_meta=None) -> list[Path]:
    """Write every export of an analysis into ``out_dir`` (created if missing), whole or not at all;
    returns the paths written. Earlier results in ``out_dir`` stay intact if anything fails."""
    given = Path(out_dir)
    out = given.expanduser().resolve()
    if out.exists() and not out.is_dir():
        raise LulcError(f"{given} is a file; give a folder for the results (it is created if missing)")
    tmp = None
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
        os.chmod(tmp, stat.S_IMODE(out.stat().st_mode) if out.is_dir() else 0o777 & ~_umask())
        names = [p.name for p in _write_all(analysis, tmp, model_meta)]
        publish_folder(tmp, out)
    except OSError as exc:
        raise LulcError(f"could not write the results to {given} ({exc.strerror or exc}); earlier results there "
                        "are unchanged: free disk space, check permissions or choose another --out") from None
    finally:
        if tmp is not None and tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return [given / n for n in names]


def download_bundles(analysis, model_meta=None) -> dict[str, tuple[bytes, str, str]]:
    """What the dashboard offers for download: ``{label: (data, file name, MIME type)}``, the same
    files :func:`export_all` writes, zipped by kind."""
    out = {}
    for label, write, name, mime in _export_kinds(analysis, model_meta):
        with tempfile.TemporaryDirectory() as tmp:
            files = write(Path(tmp))
            if mime == ZIP_MIME:
                buf = io.BytesIO()
                with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
                    for f in sorted(Path(tmp).iterdir()):
                        zf.write(f, f.name)
                data = buf.getvalue()
            else:
                data = files[0].read_bytes()
        out[label] = (data, name, mime)
    return out
