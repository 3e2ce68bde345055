"""The self-contained HTML report of a region run (``report.html`` in its output folder), at overview
resolution: the figures are read back from what the run wrote (``kinds.csv``, ``transitions.csv``),
the maps from its VRTs (one image per map, at most ``max_side`` pixels a side), inlined as PNG.

Also the overview reading shared with the dashboard (:func:`lulc_core.batch.overview_layers`).
"""

from __future__ import annotations

import csv
import datetime as dt
import html
from pathlib import Path
from typing import Any

import numpy as np

from lulc_core.change import ChangeKind, ChangeThresholds
from lulc_core.classes import CLASS_COLOURS, CLASS_NAMES, GROUP_NAMES, group_of_classes, hex_to_rgb
from lulc_core.export import CLASS_NODATA
from lulc_core.joint import shipped_counted_model
from lulc_core.render import KIND_COLOURS, change_legend_items, legend_html, legend_items, png_bytes
from lulc_core.report import ATTRIBUTION, _img
from lulc_core.texts import change_rule_text

#: The overview maps: (name, product file stem, band).
LAYERS = (("classes_a", "classes_a", 1), ("classes_b", "classes_b", 1), ("change", "change_cells", 4))
COUNTED = ("land-cover change", "built-up change")
TOP_TRANSITIONS = 10


def overview_values(path: Path, band: int, max_side: int = 1200) -> tuple[np.ndarray, Any, str]:
    """One band of a raster read at overview resolution (nearest; at most ``max_side`` pixels a side):
    the values, their affine transform and the CRS."""
    import rasterio
    from rasterio.enums import Resampling

    with rasterio.open(path) as src:
        k = max(1, int(np.ceil(max(src.width, src.height) / max_side)))
        h, w = int(np.ceil(src.height / k)), int(np.ceil(src.width / k))
        v = src.read(band, out_shape=(h, w), resampling=Resampling.nearest)
        transform = src.transform @ src.transform.scale(src.width / w, src.height / h)
        return v, transform, src.crs.to_string()


def overview_rgba(layer: str, v: np.ndarray) -> np.ndarray:
    """(H, W, 4) uint8 of overview values: kind colours for ``change``, class colours otherwise
    (transparent outside the region)."""
    img = np.zeros(v.shape + (4,), np.uint8)
    if layer == "change":
        for kind, colour in KIND_COLOURS.items():
            img[v == int(kind)] = (*hex_to_rgb(colour), 255)
        img[np.isnan(v) | (v == int(ChangeKind.OUTSIDE))] = 0
    else:
        for c, colour in enumerate(CLASS_COLOURS):
            img[v == c] = (*hex_to_rgb(colour), 255)
        img[v == CLASS_NODATA] = 0
    return img


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def imagery_dates(out: Path, tile_keys: list[str]) -> dict[str, tuple[str, str]]:
    """The first and last acquisition date of each date's imagery ("a", "b") over the given tiles, from
    their first-pass results under ``out/tiles/`` (the newest result of each tile); {} when none is left."""
    import json

    seen: dict[str, list[str]] = {"a": [], "b": []}
    for key in tile_keys:
        files = sorted((out / "tiles").glob(f"*/{key}.classes.npz"), key=lambda p: p.stat().st_mtime)
        if not files:
            continue
        try:
            with np.load(files[-1]) as z:
                meta = json.loads(bytes(z["_meta"]).decode())
        except (OSError, ValueError, KeyError):
            continue
        for d in seen:
            seen[d] += [s[:10] for s in meta.get(f"dates_{d}", [])]
    return {d: (min(v), max(v)) for d, v in seen.items() if v}


def _table(head: tuple[str, ...], rows: list[tuple], cls: str = "") -> str:
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="{cls}"><tr>{th}</tr>{body}</table>'


def _group_gains(transitions: list[dict[str, str]]) -> list[tuple[str, str, str, str]]:
    """(group, gains, losses, net) in hectares from the class transitions between groups."""
    group = dict(zip(CLASS_NAMES, group_of_classes(CLASS_NAMES)))
    gains, losses = np.zeros(len(GROUP_NAMES)), np.zeros(len(GROUP_NAMES))
    for r in transitions:
        ga, gb = group.get(r["from_class_a"]), group.get(r["to_class_b"])
        if ga is not None and gb is not None and ga != gb:
            losses[ga] += float(r["hectares"])
            gains[gb] += float(r["hectares"])
    return [(n, f"+{g:,.2f}", f"-{lo:,.2f}" if lo else "0.00", f"{g - lo:+,.2f}" if g != lo else "0.00")
            for n, g, lo in zip(GROUP_NAMES, gains, losses)]


def region_report_html(out: Path, *, name: str, thresholds: ChangeThresholds, tiles_total: int,
                       tiles_done: list[str], area_km2: float, zones: list[str], failed: dict[str, dict[str, Any]],
                       windows: tuple[str, str] | None = None, max_side: int = 1200, deep: bool = False) -> str:
    """The report of the region output in ``out`` as one self-contained HTML page (see the module); ``deep``:
    the run had the deep change evidence (built-up change by the counted-change model)."""
    out = Path(out)
    kinds = {r["kind"]: r for r in _rows(out / "kinds.csv")}
    missing = [k for k in COUNTED if k not in kinds]
    if missing:
        raise ValueError(f"{out / 'kinds.csv'} lacks the rows {', '.join(missing)}: not a region run's kinds.csv")
    transitions = _rows(out / "transitions.csv")
    changed_ha = sum(float(kinds[k]["hectares"]) for k in COUNTED)
    moves = sorted((r for r in transitions if r["from_class_a"] != r["to_class_b"] and float(r["hectares"]) > 0),
                   key=lambda r: -float(r["hectares"]))[:TOP_TRANSITIONS]
    maps = {}
    for layer, product, band in LAYERS:
        v, _, crs = overview_values(out / f"{product}.vrt", band, max_side)
        maps[layer] = (png_bytes(overview_rgba(layer, v)), crs)
    dates = imagery_dates(out, tiles_done)
    date_items = ""
    for i, d in enumerate("ab"):
        window = f"window {html.escape(windows[i])}" if windows else "window not recorded"
        seen = f"; imagery acquired {dates[d][0]} to {dates[d][1]}" if d in dates else ""
        date_items += f"<li>Date {d.upper()}: {window}{seen}</li>"
    if failed:
        fail_rows = [(k, ", ".join(f"{x:.4f}" for x in f.get("bounds_wgs84", [])), f.get("pass", ""),
                      f.get("error", "")) for k, f in failed.items()]
        fail_html = ("<h2>Failed tiles</h2><p>Missing from the maps and the figures; the same command again "
                     "computes only the missing tiles.</p>" + _table(("tile", "bounds W, S, E, N", "pass", "error"),
                                                                   fail_rows, "failed"))
    else:
        fail_html = ""
    kind_rows = [(r["kind"], f"{float(r['hectares']):,.2f}", r["cells"]) for r in kinds.values()]
    move_rows = [(r["from_class_a"], r["to_class_b"], r["kind"], f"{float(r['hectares']):,.2f}") for r in moves]
    title = f"Land-cover change, region: {html.escape(name)}"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:sans-serif;max-width:1300px;margin:2em auto;color:#222}}
.pair{{display:flex;gap:16px;flex-wrap:wrap}} figure{{margin:0}} img{{max-width:100%;height:auto}}
table{{border-collapse:collapse;font-size:12px;margin:6px 0}} td,th{{border:1px solid #ccc;padding:3px 6px;text-align:right}}
th{{background:#f4f4f4}} .note{{background:#fff8e1;padding:8px 12px;border-left:4px solid #f2b134}}
.head td{{font-size:15px}}</style>
</head><body>
<h1>{title}</h1>
<p>Generated {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC by LULC Change Explorer from the files in this folder.</p>
<ul><li>Region: {html.escape(name)}, {area_km2:,.1f} km2 analysed</li>{date_items}
<li>Tiles: {len(tiles_done)} of {tiles_total} done, {len(failed)} failed</li>
<li>UTM zones: {html.escape(', '.join(zones))}</li></ul>
<h2>Headline ({'land-cover groups' if thresholds.level == 'group' else 'classes'})</h2>
<table class="head"><tr><th>changed (counted)</th><td id="changed-ha">{changed_ha:,.2f} ha</td></tr>
<tr><th>of which land-cover change</th><td>{float(kinds['land-cover change']['hectares']):,.2f} ha</td></tr>
<tr><th>of which built-up change</th><td>{float(kinds['built-up change']['hectares']):,.2f} ha</td></tr></table>
{fail_html}
<h2>Hectares by kind and state (kinds.csv)</h2>{_table(("kind", "hectares", "cells"), kind_rows, "kinds")}
<p>{change_rule_text(thresholds, shipped_counted_model() if deep else None)}</p>
<h2>Largest from-to transitions (transitions.csv)</h2>
{_table(("from (date A)", "to (date B)", "kind", "hectares"), move_rows, "transitions")}
<h2>Gains and losses by land-cover group (hectares, between groups)</h2>
{_table(("group", "gains", "losses", "net"), _group_gains(transitions), "groups")}
<h2>Class maps</h2><p>{legend_html(legend_items("class", extras=False))}</p>
<div class="pair"><figure>{_img(maps['classes_a'][0], 'class map A', 620)}<figcaption>date A ({maps['classes_a'][1]})</figcaption></figure>
<figure>{_img(maps['classes_b'][0], 'class map B', 620)}<figcaption>date B ({maps['classes_b'][1]})</figcaption></figure></div>
<h2>Change by kind</h2><figure>{_img(maps['change'][0], 'change by kind', 900)}
<figcaption>{legend_html(change_legend_items())} ({maps['change'][1]})</figcaption></figure>
<p style="font-size:11px;color:#666">{ATTRIBUTION}</p>
</body></html>"""


def write_region_report(out: Path, **facts: Any) -> Path:
    """Write :func:`region_report_html` of ``out`` as ``out/report.html`` (whole, then renamed); its path."""
    path = Path(out) / "report.html"
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(region_report_html(Path(out), **facts), encoding="utf-8")
    tmp.replace(path)
    return path
