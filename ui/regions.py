"""Regional batches in the dashboard: the Area page's offer to run an area larger than one analysis as
a batch, and a finished region output read once for the Regions page."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from lulc_core.aoi import AOI
from lulc_core.batch import RegionOutput, overview_layers, read_region_output, start_batch
from lulc_core.errors import LulcError
from lulc_core.providers.base import MAX_RUN_AREA_KM2
from lulc_core.scene import DateWindow
from ui.session import batch_root, show_error


def region_batch_offer(region: AOI, kind: str) -> None:
    """A box offering to run ``region`` as tiles on Dask (the Regions page follows it)."""
    with st.container(border=True):
        st.markdown(f"**{region.name}: {region.area_km2:,.0f} km2 is more than one analysis "
                    f"({MAX_RUN_AREA_KM2:,.0f} km2).** It can run as a regional batch: tiles in their own UTM "
                    "zones on the server's Dask cluster, with progress on the Regions page, cancellable, and "
                    "results as maps, totals and cell details (also GeoTIFF / GeoParquet / CSV files).")
        wa0 = st.session_state.get("window_a") or DateWindow.parse("2015-07-01/2015-08-31")
        wb0 = st.session_state.get("window_b") or DateWindow.parse("2017-07-01/2017-10-31")
        cols = st.columns(2)
        wa = cols[0].text_input("Region date A window", str(wa0), key="region_wa", help="YYYY-MM-DD/YYYY-MM-DD")
        wb = cols[1].text_input("Region date B window", str(wb0), key="region_wb", help="YYYY-MM-DD/YYYY-MM-DD")
        if st.button("Run as a regional batch", key="region_start", icon=":material/grid_view:"):
            try:
                a, b = DateWindow.parse(wa), DateWindow.parse(wb)
                if b.start <= a.end:
                    raise LulcError(f"date B's window ({b}) must start after date A's ({a}) ends")
                folder = start_batch(region.to_geojson(), region.name, str(a), str(b), batch_root(), provider=kind)
            except Exception as exc:  # a bad window or a batch that cannot start: a message, nothing lost
                show_error(exc)
            else:
                st.session_state.region_aoi = None
                st.success(f"Batch started ({folder.name}).")
                st.page_link("pages/4_Regions.py", label="Follow it on the Regions page", icon=":material/grid_view:")


@st.cache_data(max_entries=4, show_spinner="Reading the region's overview maps...")
def _opened_region(out: str, finished_at: float) -> tuple[RegionOutput, dict]:
    return read_region_output(Path(out)), overview_layers(Path(out))


def opened_region(out: str) -> tuple[RegionOutput, dict]:
    """A finished region output and its overview layers, read once per folder and run (the Regions page
    reruns on every click on its map); a rerun into the same folder is read again."""
    done = Path(out) / "region.json"
    return _opened_region(str(out), done.stat().st_mtime if done.exists() else 0.0)
