"""Streamlit glue shared by the pages: cached model and providers, session state, one-click demo.

Everything computed here is a ``lulc_core`` call; this module only decides what is cached
where. The model loads once per process (``st.cache_resource``); analyses are kept per input
signature so that reruns, page switches and map events never refetch or reclassify. What the
Compare page draws from an analysis is kept by :mod:`ui.caches`.
"""

from __future__ import annotations

import hashlib
import json
import sys
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable

import streamlit as st

from lulc_core.admission import AnalysisSlots, BudgetedProvider, PUBudget, SessionSpend
from lulc_core.aoi import AOI
from lulc_core.aoi_store import load_aoi, store_aoi
from lulc_core.batch import batches_root
from lulc_core.catalog import CachedSearchProvider, SearchCache
from lulc_core.collection import DEFAULT_COLLECTION
from lulc_core.errors import AOIError, LulcError
from lulc_core.gazetteer import Place, demo_places
from lulc_core.model.classifier import Classifier
from lulc_core.model.dense import DenseClassifier
from lulc_core.model.weights import default_weights_path
from lulc_core.pipeline import Analysis, run_analysis
from lulc_core.providers.base import CachingProvider
from lulc_core.providers.factory import make_provider
from lulc_core import season
from lulc_core.scene import Acquisition, DateWindow
from lulc_core.settings import Settings, load_settings


@st.cache_data(show_spinner=False)
def demo_presets() -> dict[str, tuple[DateWindow, DateWindow]]:
    """Demo area -> (window A, window B) around its best-matched real acquisitions, best-matched
    areas first (the home page's default is the closest seasonal match)."""
    return season.demo_presets(get_provider("demo").areas())


@st.cache_data(show_spinner=False)
def demo_place(area: str) -> str:
    """A demo area's place name, e.g. "Pisa, Italy"."""
    return get_provider("demo").areas().get(area, {}).get("place", area)


@st.cache_data(show_spinner=False)
def demo_place_list() -> list[Place]:
    """The demo areas as places for the place search (:func:`lulc_core.gazetteer.demo_places`)."""
    return demo_places(get_provider("demo").areas())


def search_cache() -> SearchCache:
    """This session's catalog searches (:class:`lulc_core.catalog.SearchCache`): an area and window
    is searched once per session, whatever reruns and runs follow."""
    return st.session_state.setdefault("_search_cache", SearchCache())


TILE_HOST = ("tile.openstreetmap.org", 443)


@st.cache_resource(ttl=600, show_spinner=False)
def tiles_reachable(host: tuple[str, int] = TILE_HOST, timeout: float = 1.5) -> bool:
    """Whether the basemap tile server answers a TCP connection (checked at most every 10 minutes)."""
    import socket

    try:
        with socket.create_connection(host, timeout=timeout):
            return True
    except OSError:
        return False


def basemap_enabled() -> bool:
    """OpenStreetMap tiles under the overlays only when they can load: ``LULC_BASEMAP=1`` / ``0``
    forces them on / off; by default (``auto``) a cheap cached reachability check decides, so an
    offline or air-gapped browser makes no tile request and shows no attribution for absent tiles."""
    setting = settings().basemap
    if setting in ("0", "false", "no", "off"):
        return False
    if setting in ("1", "true", "yes", "on"):
        return True
    return tiles_reachable()


def secrets_dict() -> dict[str, Any]:
    """Streamlit secrets as a plain dict, tables (e.g. ``[sentinelhub]``) as dicts of strings
    ({} when there is no secrets file)."""
    try:
        out: dict[str, Any] = {}
        for k, v in st.secrets.items():
            if isinstance(v, (str, int, float)):
                out[k] = str(v)
            elif hasattr(v, "items"):
                out[k] = {kk: str(vv) for kk, vv in v.items() if isinstance(vv, (str, int, float))}
        return out
    except Exception:  # no secrets.toml: Streamlit raises rather than returning empty
        return {}


def settings() -> Settings:
    """The project's settings as now: the environment, then these Streamlit secrets (flat or table)."""
    return load_settings(secrets=secrets_dict())


def sentinelhub_configured() -> bool:
    """Credentials found where the core looks (environment, top-level secrets or a [sentinelhub] table)."""
    return settings().has_sh_credentials


def provider_kind() -> str:
    """The data source in use: the user's choice, else Sentinel Hub with credentials, else demo."""
    if "provider_kind" not in st.session_state:
        st.session_state.provider_kind = "sentinelhub" if sentinelhub_configured() else "demo"
    return st.session_state.provider_kind


def _loaded(what: str) -> None:
    """One line in the server log per model load: the models are shared by every session of the server."""
    print(f"lulc: loaded {what} (shared by all sessions)", file=sys.stderr, flush=True)


@st.cache_resource(show_spinner="Loading the EuroSAT ResNet...")
def get_classifier() -> Classifier:
    clf = Classifier(default_weights_path(settings()))  # LULC_WEIGHTS from the environment or the secrets
    _loaded("the per-window classifier")
    return clf


@st.cache_resource(show_spinner="Loading the dense class-map model...")
def get_dense_classifier() -> DenseClassifier:
    dense = DenseClassifier()
    _loaded("the dense classifier")
    return dense


@st.cache_resource(show_spinner=False)
def get_provider(kind: str, collection: str = DEFAULT_COLLECTION):
    return make_provider(kind, collection=collection, secrets=secrets_dict())


@st.cache_resource(show_spinner=False)
def _analysis_store() -> "OrderedDict[str, Analysis]":
    return OrderedDict()


def signature(aoi: AOI, wa: DateWindow, wb: DateWindow, kind: str, collection: str,
              acq_a: Acquisition | None, acq_b: Acquisition | None, max_cloud: float) -> str:
    blob = json.dumps([aoi.geometry.wkt, str(wa), str(wb), kind, collection,
                       acq_a.id if acq_a else None, acq_b.id if acq_b else None, max_cloud])
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


@st.cache_resource(show_spinner=False)
def analysis_slots(slots: int) -> AnalysisSlots:
    """The server's analyses at once (``LULC_MAX_ANALYSES``), shared by every session."""
    return AnalysisSlots(slots)


def pu_budget() -> PUBudget:
    """The processing-unit limits (``LULC_PU_PER_SESSION``, ``LULC_PU_PER_DAY``) and the day's ledger."""
    s = settings()
    return PUBudget(s.pu_per_session, s.pu_per_day, s.cache_dir / "pu_ledger.json")


def batch_root() -> Path:
    """Where the server's regional batches live (``<LULC_CACHE_DIR>/batches``)."""
    return batches_root(settings().cache_dir)


def session_spend() -> SessionSpend:
    """Processing units this browser session has spent."""
    if "pu_spent" not in st.session_state:
        st.session_state.pu_spent = SessionSpend()
    return st.session_state.pu_spent


def budgeted(provider: Any, kind: str, spend: SessionSpend | None = None) -> Any:
    """Sentinel Hub fetches checked against the budget and charged to ``spend`` (None: this
    session's) and the day; the wrapper sits inside the disk cache, so cached scenes are free and
    never refused."""
    if kind != "sentinelhub" or not isinstance(provider, CachingProvider):
        return provider  # bundled or local scenes cost nothing
    spend = session_spend() if spend is None else spend
    return CachingProvider(BudgetedProvider(provider.provider, pu_budget(), spend), provider.cache)


@st.cache_resource(show_spinner=False)
def _analysis_locks() -> dict[str, threading.Lock]:
    return {}


def _key_lock(key: str) -> threading.Lock:
    """One lock per analysis signature: a second request for the same inputs waits for the first
    one's result instead of computing it again (two sessions, or the warm-up and a session)."""
    with _LOCKS_LOCK:
        return _analysis_locks().setdefault(key, threading.Lock())


_LOCKS_LOCK = threading.Lock()


def stored_analysis(aoi: AOI, wa: DateWindow, wb: DateWindow, kind: str, collection: str,
                    acq_a: Acquisition | None, acq_b: Acquisition | None, max_cloud: float,
                    spend: SessionSpend | None, progress=None,
                    on_wait: Callable[[int], None] | None = None) -> tuple[str, Analysis]:
    """The server's analysis for these inputs (signature, result), run once for all sessions.

    New analyses take a turn among the server's slots (``on_wait(place)`` while queued); Sentinel
    Hub fetches are charged to ``spend`` (a session's) and the day."""
    key = signature(aoi, wa, wb, kind, collection, acq_a, acq_b, max_cloud)
    store = _analysis_store()
    with _key_lock(key):
        if key not in store:
            provider = get_provider(kind, collection)
            cache_warnings = getattr(getattr(provider, "cache", None), "warnings", [])
            seen = len(cache_warnings)
            # the page's searches answer the run's
            searched = CachedSearchProvider(budgeted(provider, kind, spend), search_cache())
            with analysis_slots(settings().max_analyses).turn(on_wait):
                result = run_analysis(aoi, wa, wb, searched, get_dense_classifier(), acq_a, acq_b, max_cloud,
                                      progress=progress, classifier=get_classifier())  # refines unsure windows
            # a scene that could not be cached is a warning on the page, never the end of the run
            result.notes.extend(w for w in cache_warnings[seen:] if w not in result.notes)
            store[key] = result
            while len(store) > 8:
                store.popitem(last=False)
        store.move_to_end(key)
        return key, store[key]


def analyse(aoi: AOI, wa: DateWindow, wb: DateWindow, kind: str, collection: str,
            acq_a: Acquisition | None, acq_b: Acquisition | None, max_cloud: float,
            progress=None, on_wait: Callable[[int], None] | None = None) -> Analysis:
    """Run (or reuse) the analysis for these inputs and make it the session's current one
    (:func:`stored_analysis`, charged to this session's processing-unit budget)."""
    spend = session_spend() if kind == "sentinelhub" else None
    key, result = stored_analysis(aoi, wa, wb, kind, collection, acq_a, acq_b, max_cloud, spend,
                                  progress=progress, on_wait=on_wait)
    st.session_state.analysis_key = key
    st.session_state.analysis = result
    st.session_state.analysis_link = link_params(aoi, wa, wb, kind)
    st.session_state.pop("cell", None)
    return result


def prefetch_demo() -> str:
    """The first demo area's analysis computed ahead of any session (the warm-up's last stage): the
    home page offers it first, so a new visitor's first click finds it ready. Returns its area."""
    area = next(iter(demo_presets()))
    provider = get_provider("demo")
    wa, wb = demo_presets()[area]
    stored_analysis(provider.area_aoi(area), wa, wb, "demo", DEFAULT_COLLECTION, None, None, 100.0, None)
    return area


# -- shareable links: the analysis as URL query parameters ---------------------------------------
LINK_KEYS = ("area", "aoi", "bbox", "a", "b", "source", "level", "conf", "spectral", "built")
#: What a link adds about the Compare page: the selected cell (``row,col``) and the maps' view (``lat,lng,zoom``).
VIEW_KEYS = ("cell", "view")


def aoi_folder() -> Path:
    """Where the areas named by links are kept (:mod:`lulc_core.aoi_store`), beside the scene cache."""
    return settings().cache_dir / "aois"


def link_params(aoi: AOI, wa: DateWindow, wb: DateWindow, kind: str) -> dict[str, str]:
    """Query parameters that describe an analysis: a demo area by name, any other AOI by the short id
    of its polygon kept on this server and by its lon/lat bounding box (what a server that does not
    keep the polygon opens), and both windows."""
    params = {"a": str(wa), "b": str(wb), "source": kind}
    if kind == "demo" and aoi.name in get_provider("demo").areas():
        params["area"] = aoi.name
    else:
        try:
            params["aoi"] = store_aoi(aoi, aoi_folder())
        except OSError as exc:  # an unwritable cache: the link still holds the bounding box
            print(f"lulc: the area could not be kept for links ({exc})", file=sys.stderr, flush=True)
        params["bbox"] = ",".join(f"{v:.5f}" for v in aoi.bounds)
    return params


def parse_view(text: str) -> dict[str, Any]:
    """A view from a link, ``"lat,lng,zoom"`` -> ``{"center": (lat, lng), "zoom": zoom}``; ValueError if bad."""
    try:
        lat, lng, zoom = text.split(",")
        lat, lng, z = float(lat), float(lng), int(float(zoom))
    except (AttributeError, ValueError):
        raise ValueError(f"bad view {text!r}; use lat,lng,zoom") from None
    if not (-90 <= lat <= 90 and -180 <= lng <= 180 and 0 <= z <= 22):
        raise ValueError(f"bad view {text!r}; latitude, longitude or zoom out of range")
    return {"center": (lat, lng), "zoom": z}


def restore_from_link(params: dict[str, str], on_wait: Callable[[int], None] | None = None) -> Analysis | None:
    """Open the analysis a shared link describes (reused from memory or the scene cache: no
    refetch when the scenes are cached); thresholds in the link seed the Compare page's sliders, ``cell``
    (``row,col``) selects a cell and ``view`` (``lat,lng,zoom``) is where the Compare maps open.
    Returns None when the parameters don't describe an analysis; raises LulcError on bad values."""
    if not {"a", "b"} <= set(params) or not ({"area", "aoi", "bbox"} & set(params)):
        return None
    kind = params.get("source", "demo")
    if kind not in ("demo", "sentinelhub"):
        raise LulcError(f"unknown source {kind!r} in the link; use demo or sentinelhub")
    note = None
    if "area" in params:
        aoi = get_provider("demo").area_aoi(params["area"])
    elif "aoi" in params:
        try:
            aoi = load_aoi(params["aoi"], aoi_folder())
        except AOIError as exc:
            if "bbox" not in params:
                raise
            note = f"{exc}: its bounding box is used"
    if "area" not in params and (note is not None or "aoi" not in params):
        try:
            west, south, east, north = (float(v) for v in params["bbox"].split(","))
        except ValueError:
            raise LulcError(f"bad bbox {params['bbox']!r} in the link; use west,south,east,north") from None
        aoi = AOI.from_bbox(west, south, east, north, name="shared area")
        if note:
            aoi = AOI(aoi.geometry, aoi.name, notes=(note,))
    wa, wb = DateWindow.parse(params["a"]), DateWindow.parse(params["b"])
    store = st.session_state.setdefault("_kept", {})
    for key, name, cast in (("thr_level", "level", str), ("thr_conf", "conf", float), ("thr_spectral", "spectral", float),
                            ("thr_built", "built", float)):
        if name in params:
            try:
                store[key] = cast(params[name])
            except ValueError:
                raise LulcError(f"bad {name} {params[name]!r} in the link") from None
            st.session_state.pop(key, None)
    st.session_state.provider_kind = kind
    st.session_state.aoi = aoi
    st.session_state.window_a, st.session_state.window_b = wa, wb
    cell = view = None
    if "cell" in params:
        try:
            cell = tuple(int(v) for v in params["cell"].split(","))
        except ValueError:
            cell = ()
        if len(cell) != 2 or min(cell) < 0:
            raise LulcError(f"bad cell {params['cell']!r} in the link; use row,col")
    if "view" in params:
        try:
            view = parse_view(params["view"])
        except ValueError as exc:
            raise LulcError(f"{exc} in the link") from None
    an = analyse(aoi, wa, wb, kind, DEFAULT_COLLECTION, None, None, 100.0, on_wait=on_wait)
    if cell is not None:
        st.session_state.cell = cell  # the Compare page falls back to the top cell if it is outside the area
    if view is not None:
        st.session_state.setdefault("map_home", {})[st.session_state.analysis_key] = view
    return an


def queue_notice() -> Callable[[int], None]:
    """An ``on_wait`` for :func:`analyse`: a line on the page with this analysis' place in the
    server's queue (call ``.clear()`` on the returned function's ``slot`` when the run starts)."""
    slot = st.empty()

    def on_wait(place: int) -> None:
        ahead = "1 analysis is" if place == 1 else f"{place} analyses are"
        slot.info(f"The server is busy: {ahead} ahead of yours. It starts by itself; "
                  "you can leave this page open or cancel.", icon=":material/hourglass_top:")

    on_wait.slot = slot  # type: ignore[attr-defined]
    return on_wait


def start_demo(area: str, on_wait: Callable[[int], None] | None = None) -> Analysis:
    """One click: the demo area's AOI and its two dates, analysed on the bundled scenes."""
    provider = get_provider("demo")
    aoi = provider.area_aoi(area)
    wa, wb = demo_presets()[area]
    st.session_state.provider_kind = "demo"
    st.session_state.aoi = aoi
    st.session_state.window_a, st.session_state.window_b = wa, wb
    return analyse(aoi, wa, wb, "demo", DEFAULT_COLLECTION, None, None, 100.0, on_wait=on_wait)


def kept(key: str, default: Any) -> str:
    """A widget key whose value survives page switches (Streamlit drops the state of widgets a
    page doesn't draw): seeds the widget from the copy :func:`keep` made. Returns ``key``."""
    if key not in st.session_state:
        st.session_state[key] = st.session_state.get("_kept", {}).get(key, default)
    return key


def keep(*keys: str) -> None:
    """Copy these widgets' current values where page switches don't drop them."""
    store = st.session_state.setdefault("_kept", {})
    for k in keys:
        if k in st.session_state:
            store[k] = st.session_state[k]


def show_error(exc: Exception) -> None:
    """A user-facing error: LulcError messages as they are, anything else with its type."""
    if isinstance(exc, LulcError):
        st.error(str(exc))
    else:
        st.error(f"Unexpected {type(exc).__name__}: {exc}")


def model_summary(clf: Classifier) -> dict[str, Any]:
    m = clf.test_figures()
    return {"architecture": f"{clf.meta.architecture} ({clf.meta.stem} stem)", "accuracy": m["accuracy"],
            "ece": m["ece_after"], "n_images": m["n_images"], "tta": clf.tta, "mode": m["mode"]}
