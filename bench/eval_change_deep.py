"""Issue 16, part 3: deep change vectors (DCVA, Saha et al. 2019) from the classifier's own early
layers as change evidence, scored on the OSCD change maps (leave one area out). Not in the product.

For each OSCD area with a change map (same areas, AOIs, truth and cells as
bench/eval_change_oscd.py: 160 m cells, truly changed when >= 5% of the map's pixels changed,
cells >= 90% covered and valid and classified on both dates), both dates go through the shipped
per-window classifier's input recipe and its first layers (the folded bf16 network the app runs):
the stem (conv1, 20 m), layer1 (20 m) and layer2 (40 m). Per layer and scene, every channel is
divided by its standard deviation over both dates, the per-location change is the RMS over
channels of the difference, and each cell gets its mean and its share of locations above the
scene's mean + 2 sd (the same unsupervised rule as the 10 m spectral share). No change label is used
to compute these.

What is scored (held out, pooled over the seven areas):
- AUROC of each evidence alone, and of a logistic evidence model of several of them (fitted on six
  areas, scored on the seventh; the product's own evidence curve uses the 10 m share alone);
- F1 of the counted change when built-up change is decided by that evidence model instead of the
  product's "built-up on either date and built-up share >= s": ``evidence >= t`` (t: best F1 on the
  six areas) either only in cells built-up on either date (``built``) or anywhere (``any``), plus
  the product's land-cover changes (joint group flips) either way;
- nested: the feature set itself chosen on the six areas (inner leave one area out), so that the
  choice among sets is not made on the area it is scored on;
- what "any" counts where OSCD saw no change on Pisa (July / February, the seasonal demo).

Usage: python bench/eval_change_deep.py [--shared ../shared] [--out docs/change_deep_eval.json]
(about 2 minutes on 2 cores)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from eval_change_oscd import (area_features, auroc, bootstrap, f1, fit_evidence, fit_logistic,  # noqa: E402
                              joint_decision, tune_min_built, tune_spectral_only)

from lulc_core.bands import band_indices  # noqa: E402
from lulc_core.change import ChangeKind  # noqa: E402
from lulc_core.grid import GEOMETRY, block_means  # noqa: E402
from lulc_core.model.classifier import Classifier  # noqa: E402
from lulc_core.model.dense import DenseClassifier  # noqa: E402
from lulc_core.model.transforms import normalise  # noqa: E402
from lulc_core.providers.demo import DemoProvider  # noqa: E402

CONFIDENCE = 0.6
LAYERS = ("conv1", "layer1", "layer2")
DEEP = ("conv1_share", "conv1_mean", "layer1_share", "layer1_mean", "layer2_mean")
#: Evidence sets compared (each a logistic model on these cell features).
FAMILY = {
    "share": ("share",),
    "built_share": ("built_share",),
    "share + built_share": ("share", "built_share"),
    "share + layer1_share": ("share", "layer1_share"),
    "share + built_share + conv1/layer1 shares": ("share", "built_share", "conv1_share", "layer1_share"),
    "share + deep (5)": ("share",) + DEEP,
    "share + built_share + deep (5)": ("share", "built_share") + DEEP,
}
MAIN = "share + built_share + deep (5)"
THRESHOLDS = np.round(np.linspace(0.02, 0.9, 45), 2)


def early_layers(net: torch.nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The stem, layer1 and layer2 outputs of a torchvision-style ResNet."""
    x0 = net.maxpool(net.relu(net.bn1(net.conv1(x))))
    l1 = net.layer1(x0)
    return {"conv1": x0, "layer1": l1, "layer2": net.layer2(l1)}


def eurosat_channel_sd(classifier: Classifier, shared: Path, images: int = 2000) -> dict[str, np.ndarray]:
    """Each early layer's per-channel standard deviation over EuroSAT images (a property of the
    network, the same for every scene), from ``images`` random EuroSAT RGB images (seed 0)."""
    from lulc_core.model.eurosat_data import load_image_set

    s = load_image_set(shared / "data" / "eurosat" / "eurosat_rgb.zip")
    pick = np.random.default_rng(0).choice(len(s), images, replace=False)
    x = torch.from_numpy(np.ascontiguousarray(s.images[pick].transpose(0, 3, 1, 2)))
    dtype = next(classifier.net.parameters()).dtype
    outs: dict[str, list[np.ndarray]] = {k: [] for k in LAYERS}
    with torch.inference_mode():
        for i in range(0, len(x), 250):
            z = normalise(x[i:i + 250], classifier.meta.norm_mean, classifier.meta.norm_std).to(dtype)
            for k, v in early_layers(classifier.net, z.contiguous(memory_format=torch.channels_last)).items():
                outs[k].append(v.float().numpy().transpose(1, 0, 2, 3).reshape(v.shape[1], -1))
    return {k: np.concatenate(v, 1).std(1) + 1e-6 for k, v in outs.items()}


def deep_change(classifier: Classifier, a, b, valid: np.ndarray, use: np.ndarray,
                channel_sd: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Per cell (``use`` cells, 160 m): mean deep change and share above the scene's mean + 2 sd, per layer
    (channels scaled by ``channel_sd``, or by their sd over both dates of the scene when None)."""
    idx = band_indices(list(a.bands), classifier.recipe.bands)
    dtype = next(classifier.net.parameters()).dtype
    feats = []
    with torch.inference_mode():
        for scene in (a, b):
            r = classifier.recipe.apply(scene.data[idx], valid)
            x = normalise(torch.from_numpy(np.ascontiguousarray(r))[None], classifier.meta.norm_mean,
                          classifier.meta.norm_std).to(dtype).contiguous(memory_format=torch.channels_last)
            feats.append({k: v[0].float().numpy() for k, v in early_layers(classifier.net, x).items()})
    out = {}
    rows, cols = use.shape
    for k in LAYERS:
        fa, fb = feats[0][k], feats[1][k]
        sd = (channel_sd[k] if channel_sd is not None else
              np.concatenate([fa.reshape(len(fa), -1), fb.reshape(len(fb), -1)], 1).std(1) + 1e-6)
        d = np.sqrt((((fa - fb) / sd[:, None, None]) ** 2).mean(0))
        per = GEOMETRY.cell_px // (valid.shape[0] // d.shape[0])  # locations per cell side

        def cells(v: np.ndarray) -> np.ndarray:
            c = block_means(v, per)
            c = np.pad(c, ((0, max(0, rows - c.shape[0])), (0, max(0, cols - c.shape[1]))))[:rows, :cols]
            return c[use]
        out[f"{k}_mean"] = cells(d)
        out[f"{k}_share"] = cells((d > d.mean() + 2 * d.std()).astype(np.float64))
    return out


def logit(s: np.ndarray) -> np.ndarray:
    s = np.clip(np.nan_to_num(np.asarray(s, np.float64)), 0.002, 0.998)
    return np.log(s / (1 - s))


class Area:
    """One area's cells: features, truth and the product's own decision pieces (held out)."""

    def __init__(self, f: dict, deep: dict[str, np.ndarray], train: list[dict]) -> None:
        g = f["cell"]
        use = g["use"]
        self.name, self.truth = f["area"], g["truth"]
        self.x = {"share": logit(g["share"]), "built_share": logit(g["built_share"][use])}
        self.x.update({k: logit(v) if k.endswith("share") else np.log(v + 1e-3) for k, v in deep.items()})
        s_only = tune_spectral_only(train, "cell")
        model = fit_evidence(train, "cell", CONFIDENCE)
        s_built = tune_min_built(train, "cell", model, s_only, CONFIDENCE)
        ch = joint_decision(g, model, s_built, s_only, CONFIDENCE)
        self.product = ch.counted[use]
        self.flip = (ch.kind == ChangeKind.LAND_COVER)[use]
        self.uncertain = (ch.kind == ChangeKind.UNCERTAIN)[use]
        self.built = (g["group_a"][:, 0] >= 0.5) | (g["group_b"][:, 0] >= 0.5)
        self.agri_a = g["group_a"].argmax(-1) == 1

    def matrix(self, cols: tuple[str, ...]) -> np.ndarray:
        return np.column_stack([self.x[c] for c in cols])


class Rule:
    """Counted change = the product's joint group flips + evidence model >= threshold (in built-up
    cells only, or anywhere), fitted on training areas."""

    def __init__(self, cols: tuple[str, ...], train: list[Area], where: str) -> None:
        self.cols, self.where = cols, where
        x = np.concatenate([a.matrix(cols) for a in train])
        y = np.concatenate([a.truth for a in train])
        self.mu, self.sd = x.mean(0), x.std(0) + 1e-9
        self.w = fit_logistic((x - self.mu) / self.sd, y.astype(float))
        self.threshold = float(max(THRESHOLDS, key=lambda t: (f1(np.concatenate([self.decide(a, t) for a in train]),
                                                                    y)["f1"], -t)))

    def evidence(self, a: Area) -> np.ndarray:
        return 1 / (1 + np.exp(-(self.w[0] + ((a.matrix(self.cols) - self.mu) / self.sd) @ self.w[1:])))

    def decide(self, a: Area, t: float | None = None) -> np.ndarray:
        e = (self.evidence(a) >= (self.threshold if t is None else t)) & ~a.uncertain
        if self.where == "built":
            e &= a.built
        return a.flip | e


def held_out(areas: list[Area], pick) -> tuple[list[np.ndarray], list[np.ndarray], list]:
    """Decisions and evidence on each area from a rule fitted on the others (``pick(train)`` -> Rule)."""
    preds, evid, rules = [], [], []
    for i, a in enumerate(areas):
        rule = pick(areas[:i] + areas[i + 1:])
        preds.append(rule.decide(a)); evid.append(rule.evidence(a)); rules.append(rule)
    return preds, evid, rules


def summary(areas: list[Area], preds: list[np.ndarray]) -> dict:
    t = np.concatenate([a.truth for a in areas])
    p = np.concatenate(preds)
    out = {k: round(v, 3) if isinstance(v, float) else v for k, v in f1(p, t).items()}
    out["per_area_f1"] = {a.name: round(f1(q, a.truth)["f1"], 3) for a, q in zip(areas, preds)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", default=str(ROOT.parent / "shared"))
    ap.add_argument("--out", default="")
    ap.add_argument("--channel-sd", choices=("scene", "eurosat"), default="scene",
                    help="scale each early-layer channel by its sd over the scene's two dates (default) or over "
                         "EuroSAT images (fixed, the same for every scene)")
    args = ap.parse_args()
    shared = Path(args.shared)
    if not (shared / "data" / "s2" / "index.json").exists():
        sys.exit(f"{shared}/data/s2 is missing: this evaluation needs the shared OSCD scenes")
    t0 = time.time()
    index = json.loads((shared / "data" / "s2" / "index.json").read_text())["areas"]
    provider = DemoProvider(shared / "data" / "s2" / "oscd", name="oscd")
    dense, classifier = DenseClassifier(), Classifier()
    channel_sd = eurosat_channel_sd(classifier, shared) if args.channel_sd == "eurosat" else None
    feats, deeps = [], []
    for area, info in sorted(index.items()):
        if not info.get("label"):
            continue
        f = area_features(provider, area, info, shared, dense, classifier)
        a, b = f.pop("scenes")  # not kept: the deep features are all this needs of them
        feats.append(f)
        deeps.append(deep_change(classifier, a, b, f["valid"], f["cell"]["use"], channel_sd))
        print(f"{area}: features in {time.time() - t0:.0f} s", file=sys.stderr, flush=True)
    areas = [Area(f, d, feats[:i] + feats[i + 1:]) for i, (f, d) in enumerate(zip(feats, deeps))]
    truth = np.concatenate([a.truth for a in areas])
    result: dict = {"channel_sd": args.channel_sd, "protocol": "leave one area out, 7 OSCD areas, 160 m cells (as bench/eval_change_oscd.py)",
                    "cells": int(len(truth)), "truly_changed": int(truth.sum())}
    result["auroc_alone"] = {k: round(auroc(np.concatenate([a.x[k] for a in areas]), truth), 3)
                             for k in ("share", "built_share") + DEEP}
    result["product_counted"] = summary(areas, [a.product for a in areas])
    result["rules"] = {}
    for where in ("built", "any"):
        for name, cols in FAMILY.items():
            preds, evid, rules = held_out(areas, lambda tr, c=cols, w=where: Rule(c, tr, w))
            r = summary(areas, preds)
            r["evidence_auroc"] = round(auroc(np.concatenate(evid), truth), 3)
            r["thresholds"] = [r_.threshold for r_ in rules]
            result["rules"][f"{where}: {name}"] = r
            print(f"{where:5s} {name:45s} F1 {r['f1']:.3f} (P {r['precision']:.3f} R {r['recall']:.3f}) "
                  f"evidence AUROC {r['evidence_auroc']:.3f}", file=sys.stderr, flush=True)

    def nested(train: list[Area], where: str) -> Rule:
        def inner_f1(cols: tuple[str, ...]) -> float:
            preds, _, _ = held_out(train, lambda tr: Rule(cols, tr, where))
            return f1(np.concatenate(preds), np.concatenate([a.truth for a in train]))["f1"]
        return Rule(max(FAMILY.values(), key=inner_f1), train, where)
    result["nested"] = {}
    for where in ("built", "any"):
        preds, _, rules = held_out(areas, lambda tr, w=where: nested(tr, w))
        r = summary(areas, preds)
        r["sets_chosen"] = [" + ".join(rule.cols) for rule in rules]
        result["nested"][where] = r
        print(f"nested {where}: F1 {r['f1']:.3f}", file=sys.stderr, flush=True)
    main_any, _, _ = held_out(areas, lambda tr: Rule(FAMILY[MAIN], tr, "any"))
    result["bootstrap_95ci_f1"] = {
        "product": bootstrap(lambda p, t: f1(p, t)["f1"], {"p": np.concatenate([a.product for a in areas])}, truth)["p"],
        f"any: {MAIN}": bootstrap(lambda p, t: f1(p, t)["f1"], {"p": np.concatenate(main_any)}, truth)["p"]}
    pisa = [i for i, a in enumerate(areas) if a.name == "pisa"]
    if pisa:
        a, p = areas[pisa[0]], main_any[pisa[0]]
        ha = GEOMETRY.cell_px ** 2 / 100  # 10 m pixels -> hectares
        result["pisa_seasonal"] = {
            "note": "Pisa 2015-07-04 / 2018-02-11: counted cells OSCD marks unchanged, by the joint A group",
            "product_counted_ha": round(float(a.product.sum() * ha), 1),
            f"any_{MAIN}_counted_ha": round(float(p.sum() * ha), 1),
            "product_false_ha_agriculture": round(float((a.product & ~a.truth & a.agri_a).sum() * ha), 1),
            "any_false_ha_agriculture": round(float((p & ~a.truth & a.agri_a).sum() * ha), 1),
            "product_false_ha": round(float((a.product & ~a.truth).sum() * ha), 1),
            "any_false_ha": round(float((p & ~a.truth).sum() * ha), 1)}
    result["seconds"] = round(time.time() - t0, 1)
    text = json.dumps(result, indent=1)
    if args.out:
        Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
