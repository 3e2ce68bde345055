"""Compare ResNet candidates for 64 px EuroSAT patches by measured cost (and optionally accuracy).

For each (architecture, stem): parameters, FLOPs per patch, training step time (batch 64, bf16
autocast, forward + backward + SGD step) and fp32 inference throughput (batch 256), all on this
machine. ``--short-epochs N`` also trains each candidate for N epochs on the EuroSAT zip with
the project's recipe and reports validation accuracy (slow: minutes per epoch on 2 cores).
Writes docs/arch_comparison.json for the model card.

Usage: python bench/compare_architectures.py [--short-epochs 0] [--data ../shared/data/eurosat/eurosat_rgb.zip]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parent.parent

from lulc_core.model.architectures import build_resnet, count_flops

CANDIDATES = [("resnet18", "imagenet"), ("resnet18", "s2"), ("resnet50", "imagenet"), ("resnet50", "s2")]


def train_ms(model: nn.Module, steps: int = 5) -> float:
    model = model.to(memory_format=torch.channels_last).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(64, 3, 64, 64).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (64,))
    times = []
    for _ in range(steps + 2):
        t = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = nn.functional.cross_entropy(model(x).float(), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t)
    return 1000 * min(times[2:])


@torch.inference_mode()
def infer_rate(model: nn.Module, seconds: float = 4.0) -> float:
    model = model.to(memory_format=torch.channels_last).eval()
    x = torch.randn(256, 3, 64, 64).contiguous(memory_format=torch.channels_last)
    model(x)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        model(x)
        n += 256
    return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--short-epochs", type=int, default=0)
    ap.add_argument("--data", default=str(ROOT.parent / "shared/data/eurosat/eurosat_rgb.zip"))
    ap.add_argument("--out", default=str(ROOT / "docs" / "arch_comparison.json"))
    args = ap.parse_args()
    torch.set_num_threads(2)
    rows = []
    for arch, stem in CANDIDATES:
        model = build_resnet(arch, stem)
        row = {"arch": arch, "stem": stem, "params_m": sum(p.numel() for p in model.parameters()) / 1e6,
               "gflops": count_flops(model) / 1e9, "train_ms": train_ms(build_resnet(arch, stem)),
               "infer_per_s": infer_rate(model)}
        if args.short_epochs:
            from lulc_core.model.train import TrainConfig, train

            with tempfile.TemporaryDirectory() as tmp:
                meta = train(TrainConfig(data=Path(args.data), out=Path(tmp) / "w.pt", run_dir=Path(tmp) / "run",
                                         arch=arch, stem=stem, epochs=args.short_epochs))
                row["val_acc_short"] = f"{100 * meta.training['history'][-1]['val_acc']:.2f}% ({args.short_epochs} epochs)"
        rows.append(row)
        print(json.dumps(row), flush=True)
    note = ("Measured on this machine (2 CPU cores); train step = forward + backward + SGD at batch 64 with bf16 "
            "autocast, inference = fp32 eval at batch 256.")
    Path(args.out).write_text(json.dumps({"rows": rows, "note": note}, indent=1))


if __name__ == "__main__":
    main()
