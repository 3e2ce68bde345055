"""Exports of an :class:`~lulc_core.pipeline.Analysis`: GeoTIFF, GeoJSON, CSV and an HTML report.

- GeoTIFF per date, one pixel per 64x64 patch (640 m) on the AOI's UTM grid: band 1 the class
  index (0..9, colour table, nodata 65535), bands 2..11 the calibrated probabilities of the
  classes in model order, stored as uint16 x 10000 with scale 1e-4 (QGIS and rasterio apply it).
- GeoJSON (EPSG:4326): one polygon per patch inside the AOI.
- CSV: the transition matrix (hectares and patches) and class areas per date.
- HTML: a self-contained report (images inlined, no network needed to open it).
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import html
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from shapely.geometry import mapping

from lulc_core.change import STATE_NAMES, ChangeResult, measured_change_skill
from lulc_core.classes import CLASS_COLOURS, EUROSAT_CLASSES, hex_to_rgb
from lulc_core.classify import ClassMap
from lulc_core.patches import STATUS_NAMES

CLASS_NODATA = 65535
PROB_SCALE = 10_000


def classmap_profile(classes: ClassMap) -> dict[str, Any]:
    g = classes.grid
    transform = g.transform @ Affine.scale(g.patch_px)
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


def patch_features(change: ChangeResult) -> dict[str, Any]:
    """GeoJSON FeatureCollection (EPSG:4326), one polygon per patch inside the AOI."""
    a, b = change.a, change.b
    grid = a.grid
    la, lb = a.labels, b.labels
    names = change.class_names
    built = change.built_up_change
    feats = []
    for r in range(grid.rows):
        for c in range(grid.cols):
            if a.area_ha[r, c] <= 0:
                continue
            props = {
                "row": r, "col": c,
                "class_a": names[la[r, c]] if la[r, c] >= 0 else None,
                "class_b": names[lb[r, c]] if lb[r, c] >= 0 else None,
                "prob_a": [round(float(p), 5) for p in a.probs[r, c]] if la[r, c] >= 0 else None,
                "prob_b": [round(float(p), 5) for p in b.probs[r, c]] if lb[r, c] >= 0 else None,
                "status_a": STATUS_NAMES[int(a.status[r, c])],
                "status_b": STATUS_NAMES[int(b.status[r, c])],
                "change": STATE_NAMES[int(change.state[r, c])],
                "change_score": None if np.isnan(change.score[r, c]) else round(float(change.score[r, c]), 5),
                "built_up_change": None if np.isnan(built[r, c]) else round(float(built[r, c]), 5),
                "area_ha": round(float(a.area_ha[r, c]), 4),
            }
            feats.append({"type": "Feature", "properties": props,
                          "geometry": mapping(grid.to_wgs84(grid.patch_box(r, c)))})
    return {"type": "FeatureCollection", "class_order": list(names), "features": feats}


def write_geojson(path: str | Path, change: ChangeResult) -> Path:
    path = Path(path)
    path.write_text(json.dumps(patch_features(change)))
    return path


def write_csvs(out_dir: str | Path, change: ChangeResult) -> tuple[Path, Path]:
    """``transitions.csv`` (from, to, patches, hectares) and ``class_areas.csv``."""
    out_dir = Path(out_dir)
    names = change.class_names
    t_path, a_path = out_dir / "transitions.csv", out_dir / "class_areas.csv"
    with open(t_path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["from_class_a", "to_class_b", "patches", "hectares"])
        for i, fa in enumerate(names):
            for j, tb in enumerate(names):
                w.writerow([fa, tb, int(change.transition_patches[i, j]), f"{change.transition_ha[i, j]:.2f}"])
    with open(a_path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["class", "area_a_ha", "area_b_ha", "net_change_ha"])
        for k, name in enumerate(names):
            w.writerow([name, f"{change.area_a_ha[k]:.2f}", f"{change.area_b_ha[k]:.2f}",
                        f"{change.net_change_ha[k]:.2f}"])
    return t_path, a_path


def transition_matrix_csv(change: ChangeResult) -> str:
    """The transition matrix in hectares as a square CSV (rows: date A, columns: date B)."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["A \\ B"] + list(change.class_names))
    for i, name in enumerate(change.class_names):
        w.writerow([name] + [f"{v:.2f}" for v in change.transition_ha[i]])
    return buf.getvalue()


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


def _table(change: ChangeResult) -> str:
    names = change.class_names
    m = change.transition_ha
    top = max(float(m.max()), 1e-9)
    head = "".join(f"<th>{html.escape(n)}</th>" for n in names)
    rows = []
    for i, n in enumerate(names):
        cells = "".join(
            f'<td style="background:rgba(228,0,58,{0.08 + 0.6 * v / top if i != j else 0:.2f});'
            f'{"font-weight:bold" if i == j else ""}">{v:,.0f}</td>' for j, v in enumerate(m[i]))
        rows.append(f"<tr><th>{html.escape(n)}</th>{cells}</tr>")
    return (f'<table class="m"><tr><th>A \\ B (ha)</th>{head}</tr>{"".join(rows)}</table>')


def html_report(analysis, model_meta=None) -> str:
    """A self-contained HTML report of an analysis (all images inlined as data URLs)."""
    from lulc_core.render import change_map_rgba, class_map_rgba, joint_true_colour, only_patches, png_bytes

    ch = analysis.change
    a, b = analysis.a, analysis.b
    inside, patch_px = a.classes.area_ha > 0, a.patches.grid.patch_px
    tc_a, tc_b = (only_patches(tc, inside, patch_px) for tc in joint_true_colour(a.scene, b.scene))
    scale = patch_px // 8
    la, lb = f"A: {a.scene.label}", f"B: {b.scene.label}"
    counts, areas = ch.state_counts(), ch.state_areas_ha()
    skill = measured_change_skill()
    measured = built_auroc = ""
    if skill:
        measured = (f": against the OSCD urban change maps ({skill['patches']} patches) the change score ranks truly "
                    f"changed patches with AUROC {skill['auroc']:.2f} and the changed state reaches F1 {skill['f1']:.2f} "
                    f"(change-vector baseline: {skill['cva_auroc']:.2f}, {skill['cva_f1']:.2f})")
        built_auroc = f" (AUROC {skill['built_up_auroc']:.2f})"
    skill_note = (f"<li>This is land-cover change, not an urban change detector{measured}. Small construction inside a "
                  f"640 m patch rarely flips its class; the per-patch built-up change in the GeoJSON{built_auroc} is the "
                  "better guide to urbanisation.</li>")
    legend = " ".join(f'<span style="display:inline-block;width:12px;height:12px;background:{c.colour};'
                      f'border:1px solid #999"></span> {c.name}' for c in EUROSAT_CLASSES)
    acc = ""
    if model_meta is not None:
        m = model_meta.test_metrics.get("tta" if model_meta.tta_default else "plain", {})
        acc = (f"{model_meta.architecture} ({model_meta.stem} stem), test accuracy "
               f"{100 * m.get('accuracy', float('nan')):.2f}% on {m.get('n_images', '?')} held-out EuroSAT images, "
               f"ECE {m.get('ece_after', float('nan')):.3f} after temperature scaling")
    w, s, e, n = analysis.aoi.bounds
    rows_state = "".join(f"<tr><td>{k}</td><td>{counts[k]}</td><td>{areas[k]:,.1f}</td></tr>"
                         for k in ("changed", "unchanged", "uncertain"))
    thr = ch.thresholds
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>LULC change report: {html.escape(analysis.aoi.name)}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}}
.pair{{display:flex;gap:16px;flex-wrap:wrap}} .pair figure{{margin:0}}
table{{border-collapse:collapse;font-size:12px}} td,th{{border:1px solid #ccc;padding:3px 6px;text-align:right}}
.m th{{background:#f4f4f4}} .note{{background:#fff8e1;padding:8px 12px;border-left:4px solid #f2b134}}</style>
</head><body>
<h1>Land-cover change: {html.escape(analysis.aoi.name)}</h1>
<p>Generated {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC by LULC Change Explorer.</p>
<h2>Area and data</h2>
<ul><li>AOI: {analysis.aoi.area_ha:,.1f} ha, bounds W {w:.5f}, S {s:.5f}, E {e:.5f}, N {n:.5f};
grid {a.patches.grid.crs}, {a.patches.grid.rows} x {a.patches.grid.cols} patches of 64 x 64 px at 10 m</li>
<li>Date A: window {a.window}, imagery {html.escape(a.scene.label)}</li>
<li>Date B: window {b.window}, imagery {html.escape(b.scene.label)}</li>
<li>Data source: {html.escape(analysis.provider)}; processing units spent: {analysis.processing_units:g}</li>
<li>Model: {html.escape(acc) or 'EuroSAT ResNet'}</li></ul>
<h2>True colour</h2><div class="pair"><figure>{_img(png_bytes(tc_a), la)}<figcaption>{html.escape(la)}</figcaption></figure>
<figure>{_img(png_bytes(tc_b), lb)}<figcaption>{html.escape(lb)}</figcaption></figure></div>
<h2>Class maps</h2><p>{legend}; white = cloudy, dark = no data.</p>
<div class="pair"><figure>{_img(png_bytes(class_map_rgba(a.classes, scale=scale)), 'class map A')}<figcaption>{html.escape(la)}</figcaption></figure>
<figure>{_img(png_bytes(class_map_rgba(b.classes, scale=scale)), 'class map B')}<figcaption>{html.escape(lb)}</figcaption></figure></div>
<h2>Change map</h2><div class="pair"><figure>{_img(png_bytes(change_map_rgba(ch, scale=scale)), 'change map')}
<figcaption>red = changed, grey = unchanged, amber = uncertain</figcaption></figure>
<table><tr><th>state</th><th>patches</th><th>hectares</th></tr>{rows_state}</table></div>
<p>Change score = total-variation distance between the two dates' calibrated class probabilities (0..1).
A patch is uncertain when cloudy / without data on either date or when either top probability is under
{thr.confidence:.2f}; changed when the top classes differ (score at least {thr.min_score:.2f}).</p>
<h2>Transitions (hectares)</h2>{_table(ch)}
<h2>Class areas</h2>{_bars_svg(ch.class_names, ch.area_a_ha, ch.area_b_ha, (la[:40], lb[:40]))}
<h2>Limits to keep in mind</h2><div class="note"><ul>
<li>The model classifies whole 640 m patches into one of 10 EuroSAT classes; mixed patches get mixed probabilities.</li>
<li>It was trained on Level-1C (top-of-atmosphere) imagery; Level-2A input is out of its domain.</li>
<li>Seasons matter: bare winter fields and summer crops look different; compare similar seasons where possible.</li>
<li>Class flips between dates include classifier errors; check changed patches visually.</li>
{skill_note}{''.join(f'<li>{html.escape(x)}</li>' for x in analysis.notes)}</ul></div>
<p style="font-size:11px;color:#666">Contains modified Copernicus Sentinel data. EuroSAT: Helber et al., 2019.</p>
</body></html>"""


def export_all(analysis, out_dir: str | Path, model_meta=None) -> list[Path]:
    """Write every export of an analysis into ``out_dir``; returns the paths written."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, date in (("classes_a.tif", analysis.a), ("classes_b.tif", analysis.b)):
        tif = write_classmap_geotiff(out / name, date.classes, str(date.window))
        paths += [tif, tif.with_name(tif.name + ".aux.xml")]
    paths += [
        write_geojson(out / "patches.geojson", analysis.change),
        *write_csvs(out, analysis.change),
    ]
    report = out / "report.html"
    report.write_text(html_report(analysis, model_meta), encoding="utf-8")
    paths.append(report)
    return paths
