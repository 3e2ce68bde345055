"""Classifier throughput: public API vs bare forward pass, FLOPs and achieved FLOP/s.

Prints, in one run: patches/s through ``Classifier.predict_proba`` (DN arrays with band names
in, calibrated probabilities out) for batch sizes 1, 64 and 256; the same model's bare forward
pass on ready normalised tensors; their ratio; FLOPs per patch; and achieved FLOP/s over a
matrix-multiply FLOP/s measured on this machine. TTA is off here (it multiplies both sides by
8); pass --tta to measure with it. Inference runs the folded bf16 network; --fp32 measures fp32.

Usage: python bench/bench_classifier.py [--threads N] [--seconds S] [--tta] [--fp32]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np
import torch


from lulc_core.bands import EUROSAT_BAND_ORDER
from lulc_core.model.architectures import count_flops
from lulc_core.model.classifier import Classifier
from lulc_core.model.inference import network_dtype
from lulc_core.model.transforms import dihedral, normalise


def rate(fn, n_items: int, seconds: float) -> float:
    fn()  # warm-up
    done, t0 = 0, time.perf_counter()
    while True:
        fn()
        done += n_items
        el = time.perf_counter() - t0
        if el >= seconds:
            return done / el


def matmul_flops(seconds: float, dtype: torch.dtype = torch.float32) -> float:
    """Matrix-multiply FLOP/s in ``dtype`` (the network's, so the ratio compares like with like)."""
    a = torch.randn(2048, 2048, dtype=dtype)
    b = torch.randn(2048, 2048, dtype=dtype)
    n = 0
    a @ b
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ b
        n += 1
    return 2 * 2048**3 * n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--tta", action="store_true", help="full TTA (all 8 views on every patch)")
    ap.add_argument("--fp32", action="store_true", help="fp32 instead of the default bf16 inference")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    clf = Classifier(threads=args.threads, tta=args.tta, tta_threshold=float("inf"), bf16=not args.fp32)
    rng = np.random.default_rng(0)
    views = 8 if args.tta else 1
    flops = count_flops(clf.model) * views
    results = {"machine": platform.processor() or platform.machine(), "threads": args.threads,
               "torch": torch.__version__, "architecture": f"{clf.meta.architecture} ({clf.meta.stem} stem)",
               "tta": args.tta, "bf16": clf.bf16, "flops_per_patch": flops, "batches": {}}
    for bs in (1, 64, 256):
        dn = rng.integers(200, 4000, size=(bs, 13, 64, 64)).astype(np.uint16)
        api = rate(lambda: clf.predict_proba(dn, EUROSAT_BAND_ORDER), bs, args.seconds)
        x = normalise(torch.from_numpy(clf.prepare(dn, EUROSAT_BAND_ORDER)), clf.meta.norm_mean,
                      clf.meta.norm_std).to(network_dtype(clf.net)).contiguous(memory_format=torch.channels_last)

        def bare() -> None:  # the network the API runs (batch norm folded, channels-last, bf16 by default)
            with torch.inference_mode():
                for k in range(views):
                    clf.net(dihedral(x, k))

        bare_rate = rate(bare, bs, args.seconds)
        results["batches"][bs] = {"api_patches_per_s": round(api, 1), "bare_patches_per_s": round(bare_rate, 1),
                                  "api_over_bare": round(api / bare_rate, 3)}
        print(f"batch {bs:>3}: API {api:8.1f} patches/s | bare forward {bare_rate:8.1f} patches/s | "
              f"ratio {api / bare_rate:.3f}", flush=True)
    mm = matmul_flops(args.seconds, network_dtype(clf.net))
    best = max(v["bare_patches_per_s"] for v in results["batches"].values())
    results["matmul_gflops"] = round(mm / 1e9, 1)
    results["model_gflops_achieved"] = round(best * flops / 1e9, 1)
    results["achieved_over_matmul"] = round(best * flops / mm, 3)
    print(f"FLOPs per patch: {flops / 1e9:.3f} GFLOP | achieved {best * flops / 1e9:.1f} GFLOP/s | "
          f"matmul {mm / 1e9:.1f} GFLOP/s | ratio {best * flops / mm:.3f}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
