"""The self-contained HTML report of an :class:`~lulc_core.pipeline.Analysis`: images inlined as
data URLs, charts as inline SVG, so it opens without a network."""

from __future__ import annotations

import base64
import datetime as dt
import html
from typing import TYPE_CHECKING

import numpy as np

from lulc_core.change import ChangeResult, measured_change_skill
from lulc_core.grid import GEOMETRY
from lulc_core.render import (change_legend_items, change_map_rgba, class_map_rgba, joint_true_colour, legend_html, legend_items,
                              only_cells, png_bytes, spectral_change_rgba)
from lulc_core.texts import change_rule_text, change_skill_text

if TYPE_CHECKING:
    from lulc_core.model.weights import WeightsMetadata
    from lulc_core.pipeline import Analysis


#: The attribution line of every report (single run and region).
ATTRIBUTION = "Contains modified Copernicus Sentinel data. EuroSAT: Helber et al., 2019."


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



def html_report(analysis: Analysis, model_meta: WeightsMetadata | None = None) -> str:
    """A self-contained HTML report of an analysis (all images inlined as data URLs)."""
    ch = analysis.change
    a, b = analysis.a, analysis.b
    grid = analysis.grid
    inside = a.classes.area_ha > 0
    tc_a, tc_b = (only_cells(tc, inside, grid.cell_px) for tc in joint_true_colour(a.scene, b.scene))
    scale = max(grid.cell_px // 8, 1)
    la, lb = f"A: {a.scene.label}", f"B: {b.scene.label}"
    kinds = ch.kind_areas_ha()
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
    cell_m = grid.cell_m
    window_m = GEOMETRY.window_px * grid.resolution
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
<table class="head"><tr><th>changed (counted)</th><td>{kinds['land-cover change'] + kinds['built-up change']:,.1f} ha</td></tr>
<tr><th>of which land-cover change</th><td>{kinds['land-cover change']:,.1f} ha</td></tr>
<tr><th>of which built-up change</th><td>{kinds['built-up change']:,.1f} ha</td></tr>
<tr><th>natural dynamics (shown, not counted)</th><td>{kinds['natural dynamics']:,.1f} ha</td></tr>
<tr><th>unchanged</th><td>{kinds['unchanged']:,.1f} ha</td></tr>
<tr><th>uncertain (left out of the tables)</th><td>{kinds['uncertain']:,.1f} ha</td></tr>
<tr><th>flips of the classifiers alone, kept by the joint decision</th><td>{ch.independent_flip_ha:,.1f} ha</td></tr></table>
{season_html}
<p>{change_rule_text(thr, ch.counted_model)}</p>
<h2>Area and data</h2>
<ul><li>AOI: {analysis.aoi.area_ha:,.1f} ha, bounds W {w:.5f}, S {s:.5f}, E {e:.5f}, N {n:.5f};
grid {grid.crs}, {grid.rows} x {grid.cols} cells of {cell_m:.0f} m (each classified from the {window_m:.0f} m window around it)</li>
<li>Date A: window {a.window}, imagery {html.escape(a.scene.label)}</li>
<li>Date B: window {b.window}, imagery {html.escape(b.scene.label)}</li>
<li>Data source: {html.escape(analysis.provider)}; processing units spent: {analysis.processing_units:g}</li>
<li>Model: {html.escape(acc) or 'EuroSAT ResNet'}</li></ul>
<h2>True colour</h2><div class="pair"><figure>{_img(png_bytes(tc_a), la)}<figcaption>{html.escape(la)}</figcaption></figure>
<figure>{_img(png_bytes(tc_b), lb)}<figcaption>{html.escape(lb)}</figcaption></figure></div>
<h2>Land-cover groups</h2><p>{glegend}; white = cloudy, dark = no data.</p>
<div class="pair"><figure>{_img(png_bytes(class_map_rgba(ch.a, scale=scale, level='group')), 'group map A')}<figcaption>{html.escape(la)}</figcaption></figure>
<figure>{_img(png_bytes(class_map_rgba(ch.b, scale=scale, level='group')), 'group map B')}<figcaption>{html.escape(lb)}</figcaption></figure></div>
<h2>Class maps</h2><p>{legend}</p>
<div class="pair"><figure>{_img(png_bytes(class_map_rgba(ch.a, scale=scale)), 'class map A')}<figcaption>{html.escape(la)}</figcaption></figure>
<figure>{_img(png_bytes(class_map_rgba(ch.b, scale=scale)), 'class map B')}<figcaption>{html.escape(lb)}</figcaption></figure></div>
<h2>Change</h2><div class="pair"><figure>{_img(png_bytes(change_map_rgba(ch, scale=scale)), 'change map')}
<figcaption>{legend_html(change_legend_items())}</figcaption></figure>
<figure>{_img(png_bytes(spec_on_tc), '10 m spectral change')}<figcaption>magenta = 10 m pixels with spectral change
(threshold {analysis.spectral.threshold:.2f}), over date A</figcaption></figure></div>
<h2>Transitions between groups (hectares)</h2>{_matrix_table(ch.group_names, ch.group_transition_ha)}
<p>In the tables: {ch.compared_ha:,.1f} ha (the most probable pair of each cell that is not uncertain); left out: {ch.left_out_ha:,.1f} ha uncertain.</p>
<h2>Gains and losses</h2><div class="pair">{_gains_table(ch, 'group')}{_gains_table(ch, 'class')}</div>
<h2>Transitions between classes (hectares)</h2><p>Amber: changes inside one group (e.g. crop rotation / season),
not counted as land-cover change at group level. Red: land-cover change.</p>{_matrix_table(ch.class_names, ch.transition_ha, ch.transition_kind)}
<h2>Class areas</h2>{_bars_svg(ch.class_names, ch.area_a_ha, ch.area_b_ha, (la[:40], lb[:40]))}
<h2>Limits to keep in mind</h2><div class="note"><ul>
<li>Each {cell_m:.0f} m cell is classified from the {window_m:.0f} m window around it into one of 10 EuroSAT classes; mixed areas get mixed probabilities.</li>
<li>The model was trained on Level-1C (top-of-atmosphere) imagery; Level-2A input is out of its domain.</li>
<li>Seasons matter: bare winter fields and summer crops look different; compare similar seasons where possible.</li>
<li>Check changed cells visually; the spectral evidence also reacts to moisture, shadows and misregistration.</li>
{f'<li>{html.escape(skill_note)}</li>' if skill_note else ''}{''.join(f'<li>{html.escape(x)}</li>' for x in analysis.notes)}</ul></div>
<p style="font-size:11px;color:#666">{ATTRIBUTION}</p>
</body></html>"""
