"""Plotly figures built from plain data (no Streamlit here, so they are testable on their own)."""

from __future__ import annotations

import base64
import datetime as dt
import html
from typing import Any, Sequence

import numpy as np
import plotly.graph_objects as go

from lulc_core.bands import BANDS_BY_NAME
from lulc_core.change import ChangeResult
from lulc_core.classes import CLASS_COLOURS, CLASS_NAMES
from lulc_core.render import png_bytes

DATE_COLOURS = ("#7f9fbf", "#1b3f8f")


def probability_bars(probs_a: np.ndarray | None, probs_b: np.ndarray | None, labels: tuple[str, str],
                     threshold: float, class_names: Sequence[str] = CLASS_NAMES) -> go.Figure:
    """Grouped horizontal bars of the 10 calibrated probabilities on both dates."""
    fig = go.Figure()
    for probs, label, colour in ((probs_a, labels[0], DATE_COLOURS[0]), (probs_b, labels[1], DATE_COLOURS[1])):
        if probs is None:
            continue
        flag = " (low confidence)" if float(np.max(probs)) < threshold else ""
        fig.add_bar(y=list(class_names), x=[float(p) for p in probs], orientation="h", name=label + flag,
                    marker_color=colour, text=[f"{p:.2f}" for p in probs], textposition="outside")
    fig.add_vline(x=threshold, line_dash="dot", line_color="#f2b134",
                  annotation_text=f"confidence threshold {threshold:.2f}", annotation_position="top")
    fig.update_layout(barmode="group", height=420, margin=dict(l=10, r=10, t=30, b=10),
                      xaxis=dict(range=[0, 1.1], title="calibrated probability"),
                      yaxis=dict(autorange="reversed"), legend=dict(orientation="h", y=-0.15))
    return fig


def spectral_signature(sig_a: dict[str, float] | None, sig_b: dict[str, float] | None, labels: tuple[str, str],
                       references: dict[str, dict[str, float]] | None = None,
                       highlight: Sequence[str] = ()) -> go.Figure:
    """Reflectance vs band centre wavelength of a cell's window on both dates, with the EuroSAT mean
    signature of each class in ``highlight`` (e.g. the cell's predicted classes) for reference."""
    fig = go.Figure()
    for cls in highlight:
        sig = (references or {}).get(cls)
        if sig:
            names = sorted(sig, key=lambda b: BANDS_BY_NAME[b].wavelength_nm)
            fig.add_scatter(x=[BANDS_BY_NAME[b].wavelength_nm for b in names], y=[sig[b] for b in names],
                            mode="lines", name=f"EuroSAT mean {cls}",
                            line=dict(color=CLASS_COLOURS[CLASS_NAMES.index(cls)], dash="dot", width=2))
    for sig, label, colour in ((sig_a, labels[0], DATE_COLOURS[0]), (sig_b, labels[1], DATE_COLOURS[1])):
        if not sig:
            continue
        names = sorted(sig, key=lambda b: BANDS_BY_NAME[b].wavelength_nm)
        fig.add_scatter(x=[BANDS_BY_NAME[b].wavelength_nm for b in names], y=[sig[b] for b in names],
                        mode="lines+markers", name=label, text=names, line=dict(color=colour, width=3),
                        hovertemplate="%{text} (%{x:.0f} nm): %{y:.3f}<extra></extra>")
    fig.update_layout(height=420, margin=dict(l=10, r=10, t=30, b=10),
                      xaxis=dict(title="band centre wavelength (nm)", tickvals=[443, 665, 865, 1374, 1614, 2202]),
                      yaxis=dict(title="TOA reflectance"), legend=dict(orientation="h", y=-0.2, font=dict(size=11)))
    return fig


def transition_heatmap(change: ChangeResult, level: str = "group") -> go.Figure:
    """From (date A, rows) - to (date B, columns) matrix in hectares of confident cells; at class
    level, hovering names each transition's kind (land-cover change or e.g. crop rotation / season)."""
    if level == "group":
        names, m = list(change.group_names), change.group_transition_ha
        kinds = [["no change" if i == j else "land-cover change" for j in range(len(names))] for i in range(len(names))]
    else:
        names, m = list(change.class_names), change.transition_ha
        kinds = [[change.transition_kind(i, j) for j in range(len(names))] for i in range(len(names))]
    text = [[f"{v:,.0f}" if v > 0 else "" for v in row] for row in m]
    fig = go.Figure(go.Heatmap(z=m, x=names, y=names, text=text, texttemplate="%{text}", colorscale="Reds",
                               customdata=kinds,
                               hovertemplate="%{y} -> %{x}: %{z:,.1f} ha (%{customdata})<extra></extra>",
                               colorbar=dict(title="ha")))
    fig.update_layout(height=480 if level == "class" else 340, margin=dict(l=10, r=10, t=30, b=10),
                      xaxis=dict(title="date B", tickangle=-35), yaxis=dict(title="date A", autorange="reversed"))
    return fig


def gains_losses_bars(change: ChangeResult, level: str = "group") -> go.Figure:
    """Gains (up) and losses (down) per group or class in hectares, with the net change marked."""
    names, gains, losses = change.gains_losses(level)
    fig = go.Figure()
    fig.add_bar(x=list(names), y=gains, name="gains", marker_color="#2c7fb8",
                hovertemplate="%{x}: +%{y:,.1f} ha<extra></extra>")
    fig.add_bar(x=list(names), y=-losses, name="losses", marker_color="#d95f0e",
                hovertemplate="%{x}: %{y:,.1f} ha<extra></extra>")
    fig.add_scatter(x=list(names), y=gains - losses, mode="markers", name="net", marker=dict(color="#222", size=10,
                    symbol="diamond"), hovertemplate="%{x}: net %{y:+,.1f} ha<extra></extra>")
    fig.update_layout(barmode="relative", height=360, margin=dict(l=10, r=10, t=30, b=10),
                      yaxis=dict(title="hectares"), xaxis=dict(tickangle=-25), legend=dict(orientation="h", y=1.12))
    return fig


def class_area_bars(change: ChangeResult, labels: tuple[str, str]) -> go.Figure:
    """Grouped bars of class areas (ha) on both dates."""
    names = list(change.class_names)
    fig = go.Figure()
    fig.add_bar(x=names, y=change.area_a_ha, name=labels[0], marker_color=DATE_COLOURS[0])
    fig.add_bar(x=names, y=change.area_b_ha, name=labels[1], marker_color=DATE_COLOURS[1])
    fig.update_layout(barmode="group", height=380, margin=dict(l=10, r=10, t=30, b=10),
                      yaxis=dict(title="hectares"), xaxis=dict(tickangle=-35), legend=dict(orientation="h", y=1.12))
    return fig


def confusion_heatmap(matrix: Sequence[Sequence[int]], class_names: Sequence[str] = CLASS_NAMES) -> go.Figure:
    m = np.asarray(matrix)
    fig = go.Figure(go.Heatmap(z=m, x=list(class_names), y=list(class_names), text=m, texttemplate="%{text}",
                               colorscale="Blues", hovertemplate="true %{y}, predicted %{x}: %{z}<extra></extra>"))
    fig.update_layout(height=480, margin=dict(l=10, r=10, t=30, b=10),
                      xaxis=dict(title="predicted", tickangle=-35), yaxis=dict(title="true", autorange="reversed"))
    return fig


def acquisition_timeline(acquisitions, windows: dict[str, Any] | None = None) -> go.Figure:
    """Acquisitions over an area: date against scene cloud cover, one point each (hover: source, tile;
    each point's ``customdata`` is its ISO date, see :func:`clicked_date`). ``windows``: label ->
    :class:`~lulc_core.scene.DateWindow`, shaded behind the points (e.g. the date A and B windows)."""
    fig = go.Figure(go.Scatter(
        x=[a.date.isoformat() for a in acquisitions], y=[a.cloud_cover for a in acquisitions], mode="markers",
        marker=dict(size=11, color=[a.cloud_cover for a in acquisitions], colorscale="Blues_r", cmin=0, cmax=100,
                    line=dict(width=1, color="#333")),
        customdata=[a.date.isoformat() for a in acquisitions],
        text=[f"{a.provider}, tile {a.tile_id}" for a in acquisitions],
        hovertemplate="%{x}: cloud %{y:.1f}% (%{text}); click to use this date<extra></extra>"))
    for label, w in (windows or {}).items():
        end = w.end + dt.timedelta(days=1)  # the window's last day included
        fig.add_vrect(x0=w.start.isoformat(), x1=end.isoformat(), fillcolor=WINDOW_COLOURS.get(label, "#999"),
                      opacity=0.25, line_width=0, layer="below", annotation_text=f"date {label}",
                      annotation_position="top left")
    fig.update_layout(height=200, margin=dict(l=10, r=10, t=20, b=10), yaxis=dict(title="cloud %", range=[-5, 105]),
                      xaxis=dict(title=None, type="date"), clickmode="event+select")
    return fig


WINDOW_COLOURS = {"A": "#f2b134", "B": "#1b3f8f"}


def clicked_date(points: Sequence[dict]) -> dt.date | None:
    """The acquisition date of the first clicked point of :func:`acquisition_timeline` (a Streamlit
    selection's ``points``), None when there is none."""
    for p in points or ():
        raw = p.get("customdata") or p.get("x")
        if isinstance(raw, (list, tuple)):
            raw = raw[0] if raw else None
        try:
            return dt.date.fromisoformat(str(raw)[:10])
        except (TypeError, ValueError):
            continue
    return None


def image_html(img: np.ndarray, caption: str = "") -> str:
    """An image as an HTML ``<img>`` with the PNG inline (a data URL), for ``st.markdown``, shown at its
    own size (scale the array for a bigger picture).

    ``st.image`` serves pictures from Streamlit's media store, which drops a run's files when the
    next run starts: with maps that rerun the page as they move, the browser then asks for files
    already gone (404). Inline images travel with the page and cannot go missing.
    """
    src = "data:image/png;base64," + base64.b64encode(png_bytes(np.ascontiguousarray(img))).decode("ascii")
    cap = (f'<figcaption style="font-size:0.85em;color:#666;text-align:center">{html.escape(caption)}</figcaption>'
           if caption else "")
    return (f'<figure style="margin:0 0 0.6em 0"><img src="{src}" alt="{html.escape(caption)}" '
            f'style="image-rendering:pixelated">{cap}</figure>')
