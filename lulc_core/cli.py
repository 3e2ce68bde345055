"""Command line: ``python -m lulc_core <command> ...``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DEFAULT_WEIGHTS_PATH = Path(__file__).resolve().parent / "weights" / "eurosat_rgb_resnet18.pt"


def _cmd_train(args: argparse.Namespace) -> int:
    from lulc_core.model.train import TrainConfig, train

    cfg = TrainConfig(data=Path(args.data), out=Path(args.out), run_dir=Path(args.run_dir),
                      arch=args.arch, stem=args.stem, epochs=args.epochs,
                      batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                      threads=args.threads, bf16=not args.fp32, pretrained=args.pretrained,
                      resume=args.resume, limit_train=args.limit_train,
                      stop_after=args.stop_after)
    train(cfg)
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    import json

    from lulc_core.model.classifier import Classifier
    from lulc_core.model.evaluate import evaluate

    clf = Classifier(args.weights, threads=args.threads, tta=None if args.tta == "default" else args.tta == "on")
    print(json.dumps(evaluate(args.data, clf), indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m lulc_core",
                                description="LULC Change Explorer: Sentinel-2 land-cover change detection.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    t = sub.add_parser("train", help="train the EuroSAT RGB ResNet (long; not part of the tests)")
    t.add_argument("--data", required=True, help="EuroSAT RGB zip or folder (<Class>/<Class>_<n>.jpg)")
    t.add_argument("--out", default="lulc_core/weights/eurosat_rgb_resnet18.pt", help="weights file to write")
    t.add_argument("--run-dir", default="runs/train", help="checkpoints, split and logs")
    t.add_argument("--arch", default="resnet18", choices=["resnet18", "resnet34", "resnet50"])
    t.add_argument("--stem", default="s2", choices=["imagenet", "s2"], help="s2: no max-pool, suits 64 px")
    t.add_argument("--epochs", type=int, default=18)
    t.add_argument("--batch-size", type=int, default=64)
    t.add_argument("--lr", type=float, default=0.05, help="peak learning rate of the one-cycle schedule")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--threads", type=int, default=2)
    t.add_argument("--fp32", action="store_true", help="train in fp32 instead of bf16 autocast")
    t.add_argument("--pretrained", choices=["imagenet"], default=None,
                   help="start from torchvision ImageNet weights (needs internet)")
    t.add_argument("--resume", action="store_true", help="continue from RUN_DIR/last.pt")
    t.add_argument("--stop-after", type=int, default=0, help="stop after N epochs in this run (then --resume)")
    t.add_argument("--limit-train", type=int, default=0, help="train on only N images (smoke test)")
    t.set_defaults(func=_cmd_train)

    e = sub.add_parser("evaluate", help="evaluate the classifier on a EuroSAT-layout zip or folder (JSON on stdout)")
    e.add_argument("--data", required=True, help="zip or folder laid out as <Class>/<Class>_<n>.jpg")
    e.add_argument("--weights", default=str(DEFAULT_WEIGHTS_PATH), help="weights file (default: shipped model)")
    e.add_argument("--tta", choices=["default", "on", "off"], default="default",
                   help="test-time augmentation over the 8 flips/rotations (default: as the weights say)")
    e.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    e.set_defaults(func=_cmd_evaluate)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
