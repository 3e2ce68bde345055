"""Do classic unsupervised change statistics that the product does not use yet rank OSCD's change
better than its 10 m share (issue 16: AUROC >= 0.90)? Leave one area out on the OSCD cells, as
bench/eval_change_objects.py.

Per 160 m cell, each computed from both dates' 13 L1C bands on the 10 m grid, no change label used:
- ``mad13`` / ``mad10`` / ``mad4``: IR-MAD (iteratively reweighted multivariate alteration detection,
  Nielsen 2007) over all 13 bands, the ten 10 m + 20 m bands, the four 10 m bands: canonical
  correlation of the two dates, each pixel's chi-square of its MAD variates, reweighted by the
  probability of no change until the correlations settle; share of pixels above the chi-square's
  99th percentile (scaled by the ratio of the medians) and the cell's mean chi-square;
- ``angle``: spectral angle between date A and the normalised date B over the 10 m bands, share
  above the scene's mean + 2 sd (illumination does not move it);
- ``grad``: change of local structure, the RMS over the 10 m bands of the difference of the
  normalised Sobel gradient magnitudes, share above mean + 2 sd;
- ``ssim``: 1 - the structural similarity of the cell's 16 x 16 pixels between the dates (mean over
  the 10 m bands, after the product's normalisation);
- ``coarse``: the product's magnitude on 2 x 2 means (20 m), share above its mean + 2 sd (blurred,
  so 1 px misregistration moves less);
- ``cond<k>s<seed>``: the conditional change (lulc_core.conditional: date B's 10 m bands predicted from
  date A's 13 bands per spectral stratum, both ways) with k strata and the k-means seed, share of
  pixels above its threshold; the product uses 16 strata, seed 0.
Each alone (untuned, pooled and per area), then added to the counted-change model's 6 inputs in a
logistic model fitted on six areas and scored on the seventh.

Usage: python bench/eval_change_mad.py [--shared ../shared] [--cache runs/issue16/mad_cache.pkl]
(about 4 minutes the first time, 3 after; the areas' inputs are cached)
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import eval_change_oscd as E  # noqa: E402
from eval_change_context import _logit, cell_inputs, fit, oscd_areas  # noqa: E402

from lulc_core.conditional import conditional_change, fit_conditional  # noqa: E402
from lulc_core.grid import block_sums, share_in_blocks  # noqa: E402
from lulc_core.spectral import SAMPLE_PIXELS, sample_pixels, spectral_change  # noqa: E402

CELL = 16
TEN_M = ("B02", "B03", "B04", "B08")
TWENTY_M = ("B05", "B06", "B07", "B8A", "B11", "B12")
CHI2_99 = {4: 13.2767, 10: 23.2093, 13: 27.6882}  # 99th percentiles of chi-square by degrees of freedom
CHI2_50 = {4: 3.3567, 10: 9.3418, 13: 12.3398}  # medians


def chi2_sf(x: np.ndarray, dof: int) -> np.ndarray:
    """Survival function of chi-square with ``dof`` degrees of freedom."""
    return torch.special.gammaincc(torch.tensor(dof / 2, dtype=torch.float64),
                                   torch.from_numpy(np.asarray(x, np.float64) / 2)).numpy()


def sobel(x: np.ndarray) -> np.ndarray:
    """Sobel gradient magnitude of a 2-D array (edges repeated)."""
    p = np.pad(x, 1, mode="edge")
    s = lambda dy, dx: p[1 + dy:1 + dy + x.shape[0], 1 + dx:1 + dx + x.shape[1]]  # noqa: E731
    gx = (s(-1, 1) + 2 * s(0, 1) + s(1, 1)) - (s(-1, -1) + 2 * s(0, -1) + s(1, -1))
    gy = (s(1, -1) + 2 * s(1, 0) + s(1, 1)) - (s(-1, -1) + 2 * s(-1, 0) + s(-1, 1))
    return np.hypot(gx, gy)


def irmad(x: np.ndarray, y: np.ndarray, iterations: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """IR-MAD of (bands, N) arrays x and y: (chi-square per pixel, canonical correlations)."""
    n = x.shape[0]
    w = np.ones(x.shape[1])
    rho_prev = None
    for _ in range(iterations):
        ws = w / w.sum()
        mx, my = x @ ws, y @ ws
        xc, yc = x - mx[:, None], y - my[:, None]
        sxx = (xc * ws) @ xc.T
        syy = (yc * ws) @ yc.T
        sxy = (xc * ws) @ yc.T
        # generalised eigenproblem: sxy syy^-1 syx a = rho^2 sxx a
        lx = np.linalg.cholesky(sxx)
        lxi = np.linalg.inv(lx)
        m = lxi @ sxy @ np.linalg.solve(syy, sxy.T) @ lxi.T
        r2, u = np.linalg.eigh((m + m.T) / 2)
        order = np.argsort(r2)  # ascending correlation: the first MAD variates carry the change
        r2, u = np.clip(r2[order], 0, 1 - 1e-9), u[:, order]
        a = lxi.T @ u
        b = np.linalg.solve(syy, sxy.T) @ a
        b /= np.sqrt(np.einsum("ij,ij->j", b, syy @ b))[None]
        a /= np.sqrt(np.einsum("ij,ij->j", a, sxx @ a))[None]
        s = np.sign(np.einsum("ij,ij->j", a, sxy @ b))  # positive correlation of each pair
        b *= s[None]
        rho = np.sqrt(r2)
        mad = a.T @ xc - b.T @ yc
        var = 2 * (1 - rho)
        chi = (mad ** 2 / np.maximum(var, 1e-9)[:, None]).sum(0)
        w = chi2_sf(chi, n)
        if rho_prev is not None and np.abs(rho - rho_prev).max() < 1e-4:
            break
        rho_prev = rho
    return chi, rho


def _rows(scene, names) -> np.ndarray:
    idx = [list(scene.bands).index(b) for b in names]
    return scene.data[idx].astype(np.float32)


def new_inputs(a, b, use: np.ndarray) -> dict[str, np.ndarray]:
    """The per-cell statistics of the module docstring for the cells in ``use``."""
    sp = spectral_change(a, b)
    valid = sp.valid
    h, w = use.shape
    out: dict[str, np.ndarray] = {}
    flat = valid.ravel()
    for name, bands in (("mad13", tuple(a.bands)), ("mad10", TEN_M + TWENTY_M), ("mad4", TEN_M)):
        xa, xb = _rows(a, bands).reshape(len(bands), -1), _rows(b, bands).reshape(len(bands), -1)
        chi_v, _ = irmad(xa[:, flat].astype(np.float64), xb[:, flat].astype(np.float64))
        chi = np.zeros(valid.size)
        chi[flat] = chi_v
        chi = chi.reshape(valid.shape)
        # the reweighting narrows the no-change chi-square: the threshold is scaled by the median's ratio
        cut = CHI2_99[len(bands)] * np.median(chi_v) / CHI2_50[len(bands)]
        out[f"{name}_share"] = share_in_blocks(chi > cut, valid, CELL)
        out[f"{name}_mean"] = block_sums(np.where(valid, chi, 0), CELL) / np.maximum(block_sums(valid, CELL), 1)
    idx = [list(a.bands).index(bd) for bd in TEN_M]
    xa = a.data[idx].astype(np.float32)
    xb = b.data[idx].astype(np.float32) * sp.gain[idx, None, None] + sp.offset[idx, None, None]
    cos = (xa * xb).sum(0) / (np.linalg.norm(xa, axis=0) * np.linalg.norm(xb, axis=0) + 1e-6)
    angle = np.arccos(np.clip(cos, -1, 1))

    def above(v: np.ndarray) -> np.ndarray:
        m = v[valid]
        return share_in_blocks((v > m.mean() + 2 * m.std()) & valid, valid, CELL)

    out["angle_share"] = above(angle)
    noise = sp.noise[idx] if sp.noise is not None else np.ones(len(idx))
    ga = np.stack([sobel(x) for x in xa])
    gb = np.stack([sobel(x) for x in xb])
    out["grad_share"] = above(np.sqrt((((ga - gb) / noise[:, None, None]) ** 2).mean(0)))
    # SSIM per cell, per band, over the cell's valid pixels
    hh, ww = (valid.shape[0] // CELL) * CELL, (valid.shape[1] // CELL) * CELL
    blk = lambda v: v[..., :hh, :ww].reshape(*v.shape[:-2], hh // CELL, CELL, ww // CELL, CELL)  # noqa: E731
    vb = blk(valid.astype(np.float32))
    nv = vb.sum((-3, -1)) + 1e-6
    ssim = 0
    for k in range(len(idx)):
        pa, pb = blk(xa[k]) * vb, blk(xb[k]) * vb
        ma, mb = pa.sum((-3, -1)) / nv, pb.sum((-3, -1)) / nv
        va = (pa ** 2).sum((-3, -1)) / nv - ma ** 2
        vbb = (pb ** 2).sum((-3, -1)) / nv - mb ** 2
        cov = (pa * pb).sum((-3, -1)) / nv - ma * mb
        c1, c2 = (0.01 * 3000) ** 2, (0.03 * 3000) ** 2
        ssim = ssim + ((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma ** 2 + mb ** 2 + c1) * (va + vbb + c2)) / len(idx)
    out["ssim"] = 1 - ssim
    # 20 m: 2 x 2 means of the normalised 10 m bands
    h2, w2 = valid.shape[0] // 2 * 2, valid.shape[1] // 2 * 2
    pool = lambda v: v[..., :h2, :w2].reshape(*v.shape[:-2], h2 // 2, 2, w2 // 2, 2).mean((-3, -1))  # noqa: E731
    v2 = pool(valid.astype(np.float32)) == 1
    mag2 = np.sqrt((((pool(xa) - pool(xb)) / noise[:, None, None]) ** 2).mean(0) * 2)
    m = mag2[v2]
    ch2 = (mag2 > m.mean() + 2 * m.std()) & v2
    out["coarse_share"] = share_in_blocks(ch2, v2, CELL // 2)
    idx_s, _ = sample_pixels(valid, a.transform, SAMPLE_PIXELS)
    nb = len(a.bands)
    for k in (8, 16, 24):
        for seed in (0, 1, 2):
            model = fit_conditional(a.data.reshape(nb, -1)[:, idx_s], b.data.reshape(nb, -1)[:, idx_s],
                                    tuple(a.bands), strata=k, seed=seed)
            out[f"cond{k}s{seed}_share"] = conditional_change(a, b, model=model).share(CELL)
    def on_cells(v: np.ndarray) -> np.ndarray:
        full = np.zeros(use.shape)
        hh, ww = min(h, v.shape[0]), min(w, v.shape[1])
        full[:hh, :ww] = np.nan_to_num(v[:hh, :ww])
        return full[use]

    return {k: on_cells(v) for k, v in out.items()}


def load(shared: Path, cache: Path) -> list[dict]:
    if cache.exists():
        return pickle.loads(cache.read_bytes())
    data = []
    for area, f in oscd_areas(shared):
        cols, truth = cell_inputs(f)
        data.append({"area": area, "cols": cols, "truth": truth, "use": f["cell"]["use"], "scenes": f["scenes"]})
        print(f"features: {area}", file=sys.stderr, flush=True)
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_bytes(pickle.dumps(data))
    return data


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", default=str(ROOT.parent / "shared"))
    ap.add_argument("--cache", default=str(ROOT / "runs" / "issue16" / "mad_cache.pkl"))
    args = ap.parse_args()
    data = load(Path(args.shared), Path(args.cache))
    for d in data:
        raw = new_inputs(*d["scenes"], d["use"])
        d["cols"].update({f"{k}_raw": v for k, v in raw.items()})
        d["cols"].update({k: (_logit(v) if "share" in k else np.log(v + 1e-2)) for k, v in raw.items()})
        print(f"new inputs: {d['area']}", file=sys.stderr, flush=True)
    truths = [d["truth"] for d in data]
    names = [k for k in data[0]["cols"] if k.endswith("_raw")]
    print(json.dumps({"areas": [d["area"] for d in data]}))
    for k in ["share"] + names:
        ps = [d["cols"][k] for d in data]
        print(json.dumps({"alone": k, "auroc_pooled": round(E.auroc(np.concatenate(ps), np.concatenate(truths)), 4),
                          "auroc_per_area": [round(E.auroc(p, t), 3) for p, t in zip(ps, truths)]}), flush=True)
    base = ["share", "built", "c1s", "c1m", "l1s", "l1m"]
    new = [k[:-4] for k in names]
    classic = [k for k in new if not k.startswith("cond")]
    sets = {"share alone (logistic)": ["share"], "6 inputs": base, **{f"+ {k}": base + [k] for k in new},
            "+ all classic": base + classic, "share + mad13": ["share", "mad13_share", "mad13_mean"],
            **{f"{k} instead of the share": base[1:] + [k] for k in new if k.startswith("cond")}}
    for name, keys in sets.items():
        ps = []
        for i, d in enumerate(data):
            train = [e for j, e in enumerate(data) if j != i]
            model = fit(np.concatenate([np.column_stack([e["cols"][k] for k in keys]) for e in train]),
                        np.concatenate([e["truth"] for e in train]).astype(float))
            ps.append(model(np.column_stack([d["cols"][k] for k in keys])))
        print(json.dumps({"inputs": name, "auroc_pooled": round(E.auroc(np.concatenate(ps), np.concatenate(truths)), 4),
                          "auroc_per_area": [round(E.auroc(p, t), 3) for p, t in zip(ps, truths)]}), flush=True)


if __name__ == "__main__":
    main()
