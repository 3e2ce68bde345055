"""The outputs of a region run (:mod:`lulc_core.region`), written tile by tile (memory stays bounded).

In ``OUT``, per UTM zone ``<EPSG>``, Cloud-Optimised GeoTIFFs with the single run's layouts
(:mod:`lulc_core.export`): ``classes_a_<EPSG>.tif`` / ``classes_b_<EPSG>.tif`` (class + 10
probabilities per 160 m cell, colour-table sidecar), ``change_cells_<EPSG>.tif`` (state, score,
spectral share, kind, P(change), P(counted change): :data:`~lulc_core.export.CHANGE_CELL_BANDS`) and ``change_10m_<EPSG>.tif`` (1 changed, 0 not, 255 not
comparable); one ``<product>.vrt`` each over the zones (in EPSG:4326 when the region spans several);
``changed_cells.parquet`` (GeoParquet, EPSG:4326: one polygon per changed cell);
``kinds.csv`` (hectares and cells by kind and state), ``transitions.csv`` (from-to, hectares) and
``report.html`` (the HTML report at overview resolution, :mod:`lulc_core.region_report`).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from rasterio.windows import Window

from lulc_core.change import KIND_NAMES, STATE_NAMES, ChangeKind, ChangeResult, ChangeState
from lulc_core.classes import CLASS_COLOURS, CLASS_NAMES, GROUP_NAMES, LAND_COVER_GROUPS, group_of_classes
from lulc_core.export import (CHANGE_CELL_BANDS, CLASS_NODATA, PROB_SCALE, _write_colour_table_sidecar,
                              change_cell_bands)
from lulc_core.grid import STEP_PX
from lulc_core.region_report import write_region_report
from lulc_core.tiles import Tile

PRODUCTS = ("classes_a", "classes_b", "change_cells", "change_10m")


class RegionWriter:
    """Mosaics per zone, totals and the changed cells, fed one tile at a time."""

    def __init__(self, out: Path, tiles: list[Tile], thresholds, windows: tuple[str, str] | None = None) -> None:
        self.out, self.thresholds, self.windows = Path(out), thresholds, windows
        self.n_tiles, self.done, self.area_km2 = len(tiles), [], 0.0
        self.partial = self.out / ".partial"
        self.partial.mkdir(parents=True, exist_ok=True)
        self.zones = {t.crs: t.zone_grid for t in tiles}
        self.ds: dict[tuple[str, str], Any] = {}
        n = len(CLASS_NAMES)
        self.transition_ha, self.transition_cells = np.zeros((n, n)), np.zeros((n, n), dtype=np.int64)
        self.kind_ha = {k: 0.0 for k in KIND_NAMES.values()}
        self.kind_cells = {k: 0 for k in KIND_NAMES.values()}
        self.state_ha = {k: 0.0 for k in STATE_NAMES.values()}
        self.within_group_ha = self.independent_flip_ha = 0.0
        self.changed: list[dict[str, Any]] = []
        for crs, zone in self.zones.items():
            epsg = crs.split(":")[1]
            cells = dict(crs=crs, width=zone.width // STEP_PX, height=zone.height // STEP_PX,
                         transform=zone.transform @ Affine.scale(STEP_PX), driver="GTiff", tiled=True,
                         blockxsize=256, blockysize=256, compress="deflate", sparse_ok=True, BIGTIFF="IF_SAFER")
            for p in ("classes_a", "classes_b"):
                self.ds[p, crs] = rasterio.open(self.partial / f"{p}_{epsg}.tif", "w", count=1 + n, dtype="uint16",
                                                nodata=CLASS_NODATA, **cells)
            self.ds["change_cells", crs] = rasterio.open(self.partial / f"change_cells_{epsg}.tif", "w",
                                                          count=len(CHANGE_CELL_BANDS),
                                                         dtype="float32", nodata=float("nan"), **cells)
            px = dict(cells, width=zone.width, height=zone.height, transform=zone.transform)
            self.ds["change_10m", crs] = rasterio.open(self.partial / f"change_10m_{epsg}.tif", "w", count=1,
                                                       dtype="uint8", nodata=255, **px)

    def add(self, tile: Tile, result: tuple[ChangeResult, np.ndarray]) -> None:
        ch, change10 = result
        self.done.append(tile.key)
        self.area_km2 += tile.area_km2
        y0, x0, y1, x1 = tile.core
        cw = Window(x0 // STEP_PX, y0 // STEP_PX, (x1 - x0) // STEP_PX, (y1 - y0) // STEP_PX)
        for p, cm in (("classes_a", ch.a), ("classes_b", ch.b)):
            labels = cm.labels
            data = np.full((1 + len(cm.class_names),) + labels.shape, CLASS_NODATA, dtype=np.uint16)
            ok = labels >= 0
            data[0][ok] = labels[ok]
            for k in range(len(cm.class_names)):
                data[1 + k][ok] = np.rint(cm.probs[..., k][ok] * PROB_SCALE).astype(np.uint16)
            self.ds[p, tile.crs].write(data, window=cw)
        self.ds["change_cells", tile.crs].write(change_cell_bands(ch), window=cw)
        self.ds["change_10m", tile.crs].write(change10[None], window=Window(x0, y0, x1 - x0, y1 - y0))
        self.transition_ha += ch.transition_ha
        self.transition_cells += ch.transition_cells
        area = ch.a.area_ha
        for k, name in KIND_NAMES.items():
            sel = ch.kind == k
            self.kind_ha[name] += float(area[sel].sum())
            self.kind_cells[name] += int(sel.sum())
        for k, name in STATE_NAMES.items():
            self.state_ha[name] += float(area[ch.state == k].sum())
        self.within_group_ha += ch.within_group_ha
        self.independent_flip_ha += ch.independent_flip_ha
        self._changed_cells(tile, ch)

    def _changed_cells(self, tile: Tile, ch: ChangeResult) -> None:
        grid = ch.a.grid
        names, groups = ch.class_names, ch.groups
        r0, c0 = tile.core[0] // STEP_PX, tile.core[1] // STEP_PX
        for r, c in zip(*np.nonzero(ch.state == ChangeState.CHANGED)):
            ka, kb = int(ch.label_a[r, c]), int(ch.label_b[r, c])
            self.changed.append({
                "zone": tile.crs, "row": int(r0 + r), "col": int(c0 + c), "tile": tile.key,
                "change_kind": KIND_NAMES[int(ch.kind[r, c])], "class_a": names[ka], "class_b": names[kb],
                "group_a": GROUP_NAMES[groups[ka]], "group_b": GROUP_NAMES[groups[kb]],
                "p_change": float(ch.p_change[r, c]), "change_score": float(ch.score[r, c]),
                "p_counted": float("nan") if ch.p_counted is None else float(ch.p_counted[r, c]),
                "area_ha": float(ch.a.area_ha[r, c]),
                "geometry": grid.to_wgs84(grid.cell_box(int(r), int(c)))})

    def totals(self) -> dict[str, Any]:
        r = lambda d: {k: round(v, 2) for k, v in d.items() if k != "outside"}  # noqa: E731
        return {"kinds_ha": r(self.kind_ha), "states_ha": r(self.state_ha),
                "kinds_cells": {k: v for k, v in self.kind_cells.items() if k != "outside"},
                "within_group_ha": round(self.within_group_ha, 2),
                "independent_flip_ha": round(self.independent_flip_ha, 2)}

    def finish(self, name: str, spectral: dict[str, Any], failed: dict[str, Any]) -> list[Path]:
        """Close the mosaics, write them as COGs with VRTs, the GeoParquet, the CSVs and the HTML report;
        the files written."""
        paths = []
        for (p, crs), ds in self.ds.items():
            if p.startswith("classes"):
                ds.set_band_description(1, "class")
                for k, cname in enumerate(CLASS_NAMES):
                    ds.set_band_description(2 + k, f"p_{cname}")
                ds.scales = (1.0,) + (1.0 / PROB_SCALE,) * len(CLASS_NAMES)
                ds.update_tags(classes=",".join(CLASS_NAMES), region=name)
            elif p == "change_cells":
                for i, b in enumerate(CHANGE_CELL_BANDS, 1):
                    ds.set_band_description(i, b)
                ds.update_tags(states=",".join(f"{k}={v}" for k, v in STATE_NAMES.items() if k != ChangeState.OUTSIDE),
                               kinds=",".join(f"{int(k)}={v}" for k, v in KIND_NAMES.items() if k != ChangeKind.OUTSIDE),
                               level=self.thresholds.level, confidence=str(self.thresholds.confidence), region=name)
            else:
                ds.set_band_description(1, "spectral_change")
                ds.update_tags(threshold=f"{spectral['threshold']:.4f}", values="1 changed, 0 not, 255 not comparable")
            ds.close()
        for p in PRODUCTS:
            zone_files = []
            for crs in self.zones:
                src = self.partial / f"{p}_{crs.split(':')[1]}.tif"
                dst = self.out / src.name
                _to_cog(src, dst)
                if p.startswith("classes"):
                    paths.append(_write_colour_table_sidecar(dst, CLASS_COLOURS))
                zone_files.append(dst)
                paths.append(dst)
            paths.append(write_vrt(zone_files, self.out / f"{p}.vrt"))
        paths.append(self._write_parquet())
        paths += self._write_csvs()
        paths.append(write_region_report(self.out, name=name, thresholds=self.thresholds, tiles_total=self.n_tiles,
                                         tiles_done=self.done, area_km2=self.area_km2, zones=list(self.zones),
                                         failed=failed, windows=self.windows,
                                         deep=spectral.get("deep_thresholds") is not None))
        for f in self.partial.glob("*"):
            f.unlink()
        self.partial.rmdir()
        return paths

    def _write_parquet(self) -> Path:
        import geopandas as gpd

        path = self.out / "changed_cells.parquet"
        cols = ["zone", "row", "col", "tile", "change_kind", "class_a", "class_b", "group_a", "group_b",
                "p_change", "change_score", "p_counted", "area_ha"]
        if self.changed:
            gdf = gpd.GeoDataFrame(self.changed, geometry="geometry", crs="EPSG:4326")
        else:
            gdf = gpd.GeoDataFrame({c: [] for c in cols}, geometry=gpd.GeoSeries([], crs="EPSG:4326"))
        tmp = path.with_name(f".{path.name}.tmp")
        gdf.to_parquet(tmp)
        tmp.replace(path)
        return path

    def _write_csvs(self) -> list[Path]:
        kinds, trans = self.out / "kinds.csv", self.out / "transitions.csv"
        with open(kinds, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["kind", "hectares", "cells"])
            for k in KIND_NAMES.values():
                if k != "outside":
                    w.writerow([k, f"{self.kind_ha[k]:.2f}", self.kind_cells[k]])
            for k, v in self.state_ha.items():
                if k != "outside":
                    w.writerow([f"state: {k}", f"{v:.2f}", ""])
        groups = group_of_classes(CLASS_NAMES)
        with open(trans, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["from_class_a", "to_class_b", "kind", "cells", "hectares"])
            for i, a in enumerate(CLASS_NAMES):
                for j, b in enumerate(CLASS_NAMES):
                    kind = ("no change" if i == j else "land-cover change"
                            if groups[i] != groups[j] or self.thresholds.level == "class"
                            else LAND_COVER_GROUPS[groups[i]].within)
                    w.writerow([a, b, kind, int(self.transition_cells[i, j]), f"{self.transition_ha[i, j]:.2f}"])
        return [kinds, trans]


def _to_cog(src: Path, dst: Path) -> None:
    """``src`` as a Cloud-Optimised GeoTIFF at ``dst`` (GDAL's COG driver; a tiled GeoTIFF without it)."""
    from rasterio.shutil import copy as rio_copy

    tmp = dst.with_name(f".{dst.name}.tmp")
    with rasterio.Env() as env:
        driver = "COG" if "COG" in env.drivers() else "GTiff"
    opts = {"compress": "DEFLATE", "BIGTIFF": "IF_SAFER"} if driver == "COG" else {"compress": "deflate", "tiled": True}
    rio_copy(src, tmp, driver=driver, **opts)
    tmp.replace(dst)
    aux = src.with_name(src.name + ".aux.xml")
    if aux.exists():
        aux.unlink()


def write_vrt(files: list[Path], dst: Path) -> Path:
    """One VRT over the zones' files: a mosaic when they share a CRS, else each warped to EPSG:4326
    (GDAL's warped VRTs) and mosaicked there. Paths are relative to the VRT."""
    from rasterio.shutil import copy as rio_copy
    from rasterio.vrt import WarpedVRT

    with rasterio.open(files[0]) as ds:
        crs0 = ds.crs
    sources = []
    if all(rasterio.open(f).crs == crs0 for f in files):
        sources = list(files)
    else:
        for f in files:  # a warped VRT per zone, saved by GDAL's VRT driver
            warped = dst.with_name(f"{f.stem}_4326.vrt")
            with rasterio.open(f) as src, WarpedVRT(src, crs="EPSG:4326") as vrt:
                rio_copy(vrt, warped, driver="VRT")
            sources.append(warped)
    infos = []
    for f in sources:
        with rasterio.open(f) as ds:
            infos.append((f, ds.bounds, ds.res, ds.count, ds.dtypes[0], ds.nodata, ds.crs))
    res = min(i[2][0] for i in infos), min(i[2][1] for i in infos)
    west, south = min(i[1].left for i in infos), min(i[1].bottom for i in infos)
    east, north = max(i[1].right for i in infos), max(i[1].top for i in infos)
    width, height = int(round((east - west) / res[0])), int(round((north - south) / res[1]))
    count, dtype, nodata, crs = infos[0][3], infos[0][4], infos[0][5], infos[0][6]
    gdal_type = {"uint8": "Byte", "uint16": "UInt16", "float32": "Float32"}[dtype]
    bands = []
    for b in range(1, count + 1):
        srcs = []
        for f, bounds, r, _, _, _, _ in infos:
            with rasterio.open(f) as ds:
                w, h = ds.width, ds.height
            xoff, yoff = (bounds.left - west) / res[0], (north - bounds.top) / res[1]
            srcs.append(f'<ComplexSource><SourceFilename relativeToVRT="1">{f.name}</SourceFilename>'
                        f'<SourceBand>{b}</SourceBand><SrcRect xOff="0" yOff="0" xSize="{w}" ySize="{h}"/>'
                        f'<DstRect xOff="{xoff:.6f}" yOff="{yoff:.6f}" xSize="{w * r[0] / res[0]:.6f}" '
                        f'ySize="{h * r[1] / res[1]:.6f}"/>'
                        + (f"<NODATA>{nodata}</NODATA>" if nodata is not None else "") + "</ComplexSource>")
        nd = f"<NoDataValue>{nodata}</NoDataValue>" if nodata is not None else ""
        bands.append(f'<VRTRasterBand dataType="{gdal_type}" band="{b}">{nd}{"".join(srcs)}</VRTRasterBand>')
    xml = (f'<VRTDataset rasterXSize="{width}" rasterYSize="{height}"><SRS>{crs.to_wkt()}</SRS>'
           f"<GeoTransform>{west!r}, {res[0]!r}, 0, {north!r}, 0, {-res[1]!r}</GeoTransform>{''.join(bands)}</VRTDataset>\n")
    tmp = dst.with_name(f".{dst.name}.tmp")
    tmp.write_text(xml.replace("&", "&amp;") if "&" in xml else xml)
    tmp.replace(dst)
    return dst
