"""Issue 16, part 3: variants of the 10 m spectral change evidence, scored on the OSCD change maps.

Same areas, truth and units as bench/eval_change_oscd.py (cells 160 m, patches 640 m, truly
changed when >= 5% of the map's pixels changed, units >= 90% covered and valid and classified on
both dates; the classified mask comes from the dense pass, which gives the same mask as the
refine cascade). Each variant is a (bands of the magnitude, misregistration tolerance in px,
aggregation) triple; the unit's change score is its aggregation of the 10 m magnitude:

- ``hard``: share of pixels above the unsupervised threshold (mean + 2 sd), as before;
- ``soft s``: mean of sigmoid((magnitude / threshold - 1) / s): the hard share with ties (the
  many units with no pixel above threshold) broken by how close their pixels come to it.

Nothing here is fitted to the change maps but the choice among variants: each "held out" row
picks, for each area, the variant of a family (one piece: tolerance, bands, aggregation; or all
12 together) with the best pooled cell AUROC on the other six areas and scores the seventh with
it (leave one area out), pooled over the seven. A piece is kept in lulc_core/spectral.py only
where its held-out row beats the one without it. Pixel F1 is the hard 10 m decision against the
map's pixels. 95% intervals: bootstrap over units (1000 draws, seed 0).

Usage: python bench/eval_change_evidence.py [--shared ../shared] [--cache DIR]
(about 7 minutes on 2 loaded CPU cores, mostly fetching and classifying; about 40 s again with
--cache once it holds the areas)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from eval_change_oscd import (CELL_PX, MIN_KNOWN, PATCH_PX, TRUE_CHANGE_SHARE, aggregate_cells, auroc,  # noqa: E402
                              bootstrap, f1, truth_map)

from lulc_core.classify import classify_cells  # noqa: E402
from lulc_core.grid import block_sums  # noqa: E402
from lulc_core.model.dense import DenseClassifier  # noqa: E402
from lulc_core.model.weights import SHIPPED_DENSE  # noqa: E402
from lulc_core.providers.demo import DemoProvider  # noqa: E402
from lulc_core.scene import DateWindow, Scene  # noqa: E402
from lulc_core.spectral import CHANGE_BANDS, SOFTNESS, TOLERANCE_PX, spectral_change  # noqa: E402

ALL_BANDS = None  # the magnitude over all 13 bands (before)
BANDS_10M = ("B02", "B03", "B04", "B08")
MAGNITUDES = {"13 bands": (ALL_BANDS, 0), "13 bands, tol 1 px": (ALL_BANDS, 1),
              "10 m bands": (BANDS_10M, 0), "10 m bands, tol 1 px": (BANDS_10M, 1)}
AGGREGATIONS = {"hard": 0.0, "soft 0.03": 0.03, "soft 0.07": 0.07}
BEFORE = ("13 bands", "hard")
LEVELS = (("cell", CELL_PX), ("patch", PATCH_PX))


def area_inputs(provider, area: str, info: dict, shared: Path, dense, cache: Path | None) -> dict:
    """Both scenes, the change map on their grid and the cells / patches classified on both dates."""
    path = cache / f"{area}.npz" if cache else None
    if path and path.exists():
        z = np.load(path, allow_pickle=False)
        return {k: z[k] for k in z.files}
    aoi = provider.area_aoi(area)
    d1, d2 = (d["date"] for d in info["dates"])
    a, b = provider.fetch(aoi, DateWindow.parse(d1)), provider.fetch(aoi, DateWindow.parse(d2))
    ca, cb = classify_cells(a, aoi, dense), classify_cells(b, aoi, dense)
    k = PATCH_PX // CELL_PX
    pa, pb = aggregate_cells(ca, k), aggregate_cells(cb, k)
    out = {"a": a.data, "b": b.data, "av": a.valid, "bv": b.valid, "ac": a.cloud, "bc": b.cloud,
           "bands": np.array(a.bands), "cm": truth_map(shared / "data" / "s2" / info["label"]["tif"], aoi.grid),
           "cell_classified": ca.classified & cb.classified,
           "patch_classified": np.isfinite(pa).all(-1) & np.isfinite(pb).all(-1)}
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, **out)
    return out


def scenes(d: dict) -> tuple[Scene, Scene]:
    bands = tuple(str(x) for x in d["bands"])
    make = lambda data, valid, cloud: Scene(data, bands, valid, cloud, "EPSG:32631", None, (), "oscd")  # noqa: E731
    return make(d["a"], d["av"], d["ac"]), make(d["b"], d["bv"], d["bc"])


def evaluate_area(d: dict) -> dict:
    """Per variant: held-in unit scores and truth for cells and patches, pixel counts for F1."""
    a, b = scenes(d)
    cm = d["cm"]
    known_px = cm > 0
    out: dict = {}
    for mname, (bands, tol) in MAGNITUDES.items():
        sc = spectral_change(a, b, tolerance_px=tol, bands=bands)
        ok = known_px & sc.valid
        pixel = f1(sc.changed[ok], (cm == 2)[ok])
        for level, px in LEVELS:
            n = block_sums(np.ones_like(sc.valid), px)
            truth = block_sums(cm == 2, px) / np.maximum(block_sums(known_px, px), 1) >= TRUE_CHANGE_SHARE
            use = ((block_sums(known_px, px) / n >= MIN_KNOWN) & (block_sums(sc.valid, px) / n >= MIN_KNOWN)
                   & d[f"{level}_classified"])
            for aname, softness in AGGREGATIONS.items():
                v = out.setdefault((mname, aname), {"pixel": pixel})
                v[level] = (sc.share(px, softness)[use], truth[use])
    return out


def pooled(per_area: dict[str, dict], variant, level: str) -> tuple[np.ndarray, np.ndarray]:
    return (np.concatenate([per_area[a][variant][level][0] for a in per_area]),
            np.concatenate([per_area[a][variant][level][1] for a in per_area]))


def pixel_f1(per_area: dict[str, dict], variant) -> float:
    tp, fp, fn = (sum(per_area[a][variant]["pixel"][k] for a in per_area) for k in ("tp", "fp", "fn"))
    return 2 * tp / max(2 * tp + fp + fn, 1)


def beirut_seconds(d: dict) -> dict[str, float]:
    a, b = scenes(d)
    out: dict = {"pixels": a.height * a.width}
    for name, kwargs in (("before (13 bands, no tolerance)", {"tolerance_px": 0, "bands": None}),
                         ("after (default)", {}), ("13 bands, tolerance 1 px", {"tolerance_px": 1, "bands": None})):
        t = time.perf_counter()
        spectral_change(a, b, **kwargs)
        out[name] = round(time.perf_counter() - t, 2)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default=str(ROOT.parent / "shared"))
    ap.add_argument("--cache", default="", help="keep each area's scenes, map and masks here (npz) for reruns")
    args = ap.parse_args()
    t0 = time.time()
    shared = Path(args.shared)
    index = json.loads((shared / "data" / "s2" / "index.json").read_text())["areas"]
    provider = DemoProvider(shared / "data" / "s2" / "oscd", name="oscd")
    dense = DenseClassifier(str(SHIPPED_DENSE))
    cache = Path(args.cache) if args.cache else None
    per_area, timing = {}, {}
    for area, info in sorted(index.items()):
        if not info.get("label"):
            continue
        d = area_inputs(provider, area, info, shared, dense, cache)
        per_area[area] = evaluate_area(d)
        if area == "beirut":
            timing = beirut_seconds(d)
        print(f"{area} done ({time.time() - t0:.0f} s)", file=sys.stderr, flush=True)
    after = ({v: k for k, v in MAGNITUDES.items()}[(CHANGE_BANDS, TOLERANCE_PX)],
             {v: k for k, v in AGGREGATIONS.items()}[SOFTNESS])
    areas = list(per_area)
    variants = list(per_area[areas[0]])

    # leave one area out: among a family of variants, the one with the best pooled cell AUROC on
    # six areas, scored on the seventh; one family per piece, and all variants together
    families = {
        "tolerance (13 bands, hard: tol 0 or 1 px)": [("13 bands", "hard"), ("13 bands, tol 1 px", "hard")],
        "bands (hard: 13 or 10 m bands)": [("13 bands", "hard"), ("10 m bands", "hard")],
        "aggregation (10 m bands: hard, soft 0.03, soft 0.07)": [("10 m bands", a) for a in AGGREGATIONS],
        "all 12 variants": variants,
    }
    selected, chosen = {}, {}
    for family, candidates in families.items():
        chosen[family] = {}
        for held in areas:
            train = {a: per_area[a] for a in areas if a != held}
            best = max(candidates, key=lambda v: auroc(*pooled(train, v, "cell")))
            chosen[family][held] = best
            selected.setdefault(held, {})[family] = per_area[held][best]

    def row(name: str, src: dict, v) -> str:
        cells = [f"{auroc(*src[a][v]['cell']):.3f}" for a in areas]
        figs = [auroc(*pooled(src, v, lv)) for lv, _ in LEVELS]
        return f"| {name} | {figs[0]:.3f} | {figs[1]:.3f} | {pixel_f1(src, v):.3f} | " + " | ".join(cells) + " |"

    print(f"| variant | cell AUROC | patch AUROC | pixel F1 | {' | '.join(areas)} (cell AUROC) |")
    print("|---" * (4 + len(areas)) + "|")
    for v in variants:
        tag = " **(before)**" if v == BEFORE else " **(after: default)**" if v == after else ""
        print(row(f"{v[0]}, {v[1]}{tag}", per_area, v))
    for family in families:
        print(row(f"held out, chosen on six among: {family}", selected, family))
    for family in families:
        print(f"\nChosen per held-out area among {family}: "
              + "; ".join(f"{a}: {chosen[family][a][0]}, {chosen[family][a][1]}" for a in areas))
    print("\nPatch AUROC per area (before -> after): " + ", ".join(
        f"{a} {auroc(*per_area[a][BEFORE]['patch']):.3f} -> {auroc(*per_area[a][after]['patch']):.3f}" for a in areas))
    print("Pixel F1 per area (before -> after): " + ", ".join(
        f"{a} {per_area[a][BEFORE]['pixel']['f1']:.3f} -> {per_area[a][after]['pixel']['f1']:.3f}" for a in areas))
    for level, _ in LEVELS:
        sb, t = pooled(per_area, BEFORE, level)
        sa, _t = pooled(per_area, after, level)
        ss, ts = pooled(selected, "all 12 variants", level)
        ci = bootstrap(auroc, {"before": sb, "after": sa}, t)
        diff = bootstrap(lambda x, tt: auroc(x[:, 1], tt) - auroc(x[:, 0], tt), {"d": np.column_stack([sb, sa])}, t)
        sd, _ = pooled(selected, "aggregation (10 m bands: hard, soft 0.03, soft 0.07)", level)
        ci_sel = bootstrap(auroc, {"selected": ss, "default family": sd}, ts)
        print(f"{level}s (n={len(t)}, {int(t.sum())} truly changed): 95% CI before {ci['before']}, after {ci['after']}, "
              f"held out (10 m, aggregation chosen on six) {ci_sel['default family']}, held out (any of the 12 "
              f"chosen on six) {ci_sel['selected']}; after minus before {diff['d']}")
    print(f"\nspectral_change on Beirut, seconds: {timing}")
    print(f"total {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
