"""Hectares by kind of change on the bundled demo areas, as the app decides them, and as the earlier
rules would have: the counted change with the deep change evidence (the product), the built-up share
rule (built-up on either date and >= min_built_spectral of the 10 m pixels changed, the rule before
the deep evidence), and the two dates' own argmaxes (confident group flips, no joint decision).

Demo areas only (bundled imagery, no labels): what a planner would see, e.g. how much of Pisa's
July / February pair is counted and how much is shown as natural dynamics.

Usage: python bench/demo_kinds.py [--area pisa ...]   (about 20 s per area at 2 threads)
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from lulc_core.change import compare
from lulc_core.classes import group_of_classes
from lulc_core.model.classifier import Classifier
from lulc_core.model.dense import DenseClassifier
from lulc_core.pipeline import run_analysis
from lulc_core.providers.demo import DemoProvider
from lulc_core.scene import DateWindow


def month_window(date) -> DateWindow:
    """The calendar month around a demo date (as the Area page proposes it)."""
    y, m, _ = str(date).split("-")
    end = {"02": 28, "04": 30, "06": 30, "09": 30, "11": 30}.get(m, 31)
    return DateWindow.parse(f"{y}-{m}-01/{y}-{m}-{end}")


def area_kinds(provider: DemoProvider, area: str, dense: DenseClassifier, clf: Classifier) -> dict:
    d1, d2 = provider.areas()[area]["dates"]
    aoi = provider.area_aoi(area)
    t0 = time.perf_counter()
    an = run_analysis(aoi, month_window(d1), month_window(d2), provider, dense, classifier=clf)
    seconds = time.perf_counter() - t0
    ch = an.change
    rule = compare(an.a.classes, an.b.classes, ch.thresholds, ch.spectral_share, built_share=ch.built_share)
    ia, ib = ch.independent_a, ch.independent_b
    groups = np.array(group_of_classes(ch.class_names))
    both = ia.classified & ib.classified
    pa, pb = np.nan_to_num(ia.probs), np.nan_to_num(ib.probs)
    conf = both & (pa.max(-1) >= ch.thresholds.confidence) & (pb.max(-1) >= ch.thresholds.confidence)
    own_flip = conf & (groups[pa.argmax(-1)] != groups[pb.argmax(-1)])

    def ha(k: dict) -> dict:
        return {n: round(v, 1) for n, v in k.items() if n != "outside"}

    return {"area": area, "dates": [str(d1), str(d2)], "area_ha": round(aoi.area_ha, 1),
            "with_deep_change_evidence": ha(ch.kind_areas_ha()),
            "built_up_share_rule": ha(rule.kind_areas_ha()),
            "independent_confident_group_flips_ha": round(float(ia.area_ha[own_flip].sum()), 1),
            "deep_thresholds": None if an.deep is None else an.deep.thresholds,
            "seconds": round(seconds, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--area", action="append", help="demo area (default: all)")
    args = ap.parse_args()
    provider = DemoProvider()
    dense, clf = DenseClassifier(), Classifier()
    for area in args.area or sorted(provider.areas()):
        print(json.dumps(area_kinds(provider, area, dense, clf)), flush=True)


if __name__ == "__main__":
    main()
