"""Command line: ``python -m lulc_core <command> ...``.

Any failure ends in one line on stderr (``error: ...``) and exit code 2, never a traceback
(set ``LULC_DEBUG=1`` to see one); warnings and notes go to stderr as ``warning:`` / ``note:``.
Outputs never overwrite inputs and are moved into place only when complete. ``compare`` over a
region (tiles on Dask) runs in :mod:`lulc_core.cli_region`.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from lulc_core.model.weights import SHIPPED_DENSE, SHIPPED_RGB


def _cmd_train(args: argparse.Namespace) -> int:
    from lulc_core.model.train import TrainConfig, train

    cfg = TrainConfig(data=Path(args.data), out=Path(args.out), run_dir=Path(args.run_dir),
                      arch=args.arch, stem=args.stem, epochs=args.epochs,
                      batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                      threads=args.threads, bf16=not args.fp32, pretrained=args.pretrained,
                      resume=args.resume, limit_train=args.limit_train,
                      stop_after=args.stop_after, init_from=Path(args.init_from) if args.init_from else None,
                      cutmix=args.cutmix, label_smoothing=args.label_smoothing, ema=args.ema)
    train(cfg)
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    import json

    from lulc_core.model.classifier import Classifier
    from lulc_core.model.evaluate import evaluate

    clf = Classifier(args.weights, threads=args.threads, tta=None if args.tta == "default" else args.tta == "on")
    print(json.dumps(evaluate(args.data, clf), indent=2))
    return 0


def _load_aoi(path: str, wide: bool = False):
    from lulc_core.aoi import wide_areas
    from lulc_core.aoi_readers import read_aoi_file
    from lulc_core.errors import AOIError

    p = Path(path)
    if not p.exists():
        raise AOIError(f"AOI file {p} not found")
    if wide:  # a region for compare: tiled per UTM zone, so it may span several
        with wide_areas():
            aoi = read_aoi_file(str(p))
    else:
        aoi = read_aoi_file(str(p))
    for note in aoi.notes:
        print(f"note: {note}", file=sys.stderr)
    return aoi


def _inputs(args: argparse.Namespace) -> list[Path]:
    """Files and folders a run reads, which no output may overwrite."""
    from lulc_core.providers.demo import DEMO_DIR

    out = [Path(args.aoi), DEMO_DIR]
    if getattr(args, "scenes", None):
        out.append(Path(args.scenes))
    return out


def _provider(args: argparse.Namespace):
    from lulc_core.cache import SceneCache
    from lulc_core.providers.factory import make_provider

    cache = SceneCache(args.cache_dir) if args.cache_dir else SceneCache()
    return make_provider(args.provider, scenes=args.scenes, cache=cache, collection=args.collection)


def _progress_bar(desc: str):
    from tqdm import tqdm

    bar = tqdm(total=100, desc=desc, file=sys.stderr, leave=True, bar_format="{desc}: {percentage:3.0f}%|{bar}| {postfix}")

    def update(fraction: float, message: str) -> None:
        bar.n = int(round(100 * fraction))
        bar.set_postfix_str(message, refresh=True)

    return bar, update


def _cmd_search(args: argparse.Namespace) -> int:
    from lulc_core.scene import DateWindow

    aoi, window = _load_aoi(args.aoi), DateWindow.parse(args.date)
    acqs = _provider(args).search(aoi, window, args.max_cloud)
    if args.json:
        import json

        print(json.dumps([a.to_dict() for a in acqs], indent=2))
    else:
        print(f"{len(acqs)} acquisition(s) over {aoi.name} ({aoi.area_ha:,.0f} ha) in {window}:")
        for a in acqs:
            print(f"  {a.datetime:%Y-%m-%d %H:%M} UTC  cloud {a.cloud_cover:5.1f}%  tile {a.tile_id}  {a.id}")
    return 0


def _cmd_fetch(args: argparse.Namespace) -> int:
    from lulc_core.scene import DateWindow

    import shutil
    import tempfile

    from lulc_core.checks import check_output_file

    out = check_output_file(args.out, _inputs(args))  # before any fetch: nothing spent on a bad --out
    masks = check_output_file(out.with_name(out.stem + ".masks.tif"), _inputs(args))
    aoi, window = _load_aoi(args.aoi), DateWindow.parse(args.date)
    provider = _provider(args)
    bar, update = _progress_bar(f"fetch {window}")
    try:
        scene = provider.fetch(aoi, window, None, args.max_cloud, update)
    finally:
        bar.close()  # an error message then starts on its own line
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:  # written whole beside the destination, then renamed into place
        tmp_bands, tmp_masks = scene.to_geotiff(tmp / out.name)
        os.replace(tmp_masks, masks)
        os.replace(tmp_bands, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    bands_path, masks_path = Path(args.out), Path(args.out).with_name(out.stem + ".masks.tif")
    print(f"wrote {bands_path} ({scene.width}x{scene.height} px, {len(scene.bands)} bands, {scene.crs}) "
          f"and {masks_path}; dates {', '.join(d.isoformat() for d in scene.dates)}; "
          f"processing units {scene.processing_units:g}")
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    import json

    from lulc_core.change import ChangeThresholds
    from lulc_core.checks import check_output_folder, same_imagery_note, same_window_note
    from lulc_core.cli_region import as_region, compare_region
    from lulc_core.export_set import export_all
    from lulc_core.model.dense import DenseClassifier
    from lulc_core.model.weights import load_metadata
    from lulc_core.pipeline import STAGES, run_analysis
    from lulc_core.scene import DateWindow

    check_output_folder(args.out, _inputs(args)[1:])
    aoi = _load_aoi(args.aoi, wide=True)
    wa, wb = DateWindow.parse(args.date_a), DateWindow.parse(args.date_b)
    if as_region(args, aoi):
        return compare_region(args, aoi)
    warnings = [n for n in (same_window_note(wa, wb),) if n]
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    clf = DenseClassifier(args.dense_weights, threads=args.threads)  # weights checked before any fetch
    kw = {k: v for k, v in (("min_spectral", args.min_spectral), ("min_built_spectral", args.min_built_spectral))
          if v is not None}
    thresholds = ChangeThresholds(args.confidence, level=args.level, **kw)
    provider = _provider(args)
    from lulc_core.model.classifier import Classifier

    # the per-window classifier refines unsure windows (unless --refine-below 0) and gives the deep change evidence
    refiner = Classifier(threads=args.threads, tta=False)
    bars = {}

    def progress(stage: str, fraction: float, message: str) -> None:
        if stage not in bars:
            bars[stage] = _progress_bar(f"{STAGES.index(stage) + 1}/{len(STAGES)} {stage}")
        bar, update = bars[stage]
        update(fraction, message)
        if fraction >= 1.0:
            bar.close()

    try:
        analysis = run_analysis(aoi, wa, wb, provider, clf, max_cloud=args.max_cloud,
                                thresholds=thresholds, progress=progress, classifier=refiner,
                                refine_below=args.refine_below)
    finally:
        for bar, _ in bars.values():
            bar.close()
    if note := same_imagery_note(analysis):
        warnings.append(note)
        print(f"warning: {note}", file=sys.stderr)
    warnings += getattr(provider.cache, "warnings", [])
    paths = export_all(analysis, args.out, refiner.meta if refiner is not None else load_metadata())
    ch = analysis.change
    summary = {"aoi": aoi.name, "area_ha": round(aoi.area_ha, 2), "cells": analysis.grid.n_cells,
               "cell_m": analysis.grid.cell_px * analysis.grid.resolution,
               "date_a": analysis.a.scene.label, "date_b": analysis.b.scene.label,
               "processing_units": analysis.processing_units, "level": ch.thresholds.level,
               "states_cells": ch.state_counts(),
               "states_ha": {k: round(v, 2) for k, v in ch.state_areas_ha().items() if k != "outside"},
               "kinds_ha": {k: round(v, 2) for k, v in ch.kind_areas_ha().items() if k != "outside"},
               "within_group_ha": round(ch.within_group_ha, 2),
               "independent_flip_ha": round(ch.independent_flip_ha, 2),
               "season_note": analysis.season_note, "notes": list(aoi.notes) + analysis.notes,
               "warnings": warnings, "outputs": [str(p) for p in paths]}
    print(json.dumps(summary, indent=2))
    return 0


def _add_provider_args(p: argparse.ArgumentParser) -> None:
    from lulc_core.providers.factory import DEFAULT_PROVIDER, PROVIDERS
    from lulc_core.collection import DEFAULT_COLLECTION, Collection
    from lulc_core.settings import default_cache_dir

    p.add_argument("--provider", choices=PROVIDERS, default=DEFAULT_PROVIDER,
                   help=f"demo: bundled scenes; local: --scenes DIR; sentinelhub: SH_CLIENT_ID/SH_CLIENT_SECRET "
                        f"(default {DEFAULT_PROVIDER})")
    p.add_argument("--scenes", help="folder of scenes for --provider local (<area>/<YYYYMMDD>/<band>.tif)")
    p.add_argument("--collection", choices=[c.value for c in Collection], default=DEFAULT_COLLECTION.value,
                   help=f"Sentinel Hub collection (default {DEFAULT_COLLECTION}); those outside the model's training "
                        f"domain: {', '.join(c for c in Collection if not c.in_training_domain)}")
    p.add_argument("--max-cloud", type=float, default=100.0, help="maximum scene cloud cover %% (default 100)")
    p.add_argument("--cache-dir", help=f"scene cache folder (default LULC_CACHE_DIR, else {default_cache_dir()})")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m lulc_core",
                                description="LULC Change Explorer: Sentinel-2 land-cover change detection.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    t = sub.add_parser("train", help="train the EuroSAT RGB ResNet (long; not part of the tests)")
    t.add_argument("--data", required=True, help="EuroSAT RGB zip or folder (<Class>/<Class>_<n>.jpg)")
    t.add_argument("--out", default=str(SHIPPED_RGB), help="weights file to write (default: the shipped model's)")
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
    t.add_argument("--init-from", help="start from these weights (e.g. a second cycle at a lower learning rate)")
    t.add_argument("--stop-after", type=int, default=0, help="stop after N epochs in this run (then --resume)")
    t.add_argument("--limit-train", type=int, default=0, help="train on only N images (smoke test)")
    t.add_argument("--cutmix", type=float, default=0.0, help="share of batches trained as CutMix (0..1)")
    t.add_argument("--label-smoothing", type=float, default=0.0)
    t.add_argument("--ema", type=float, default=0.0,
                   help="decay of an exponential moving average of the weights, shipped instead of the last "
                        "weights (e.g. 0.999; 0: off)")
    t.set_defaults(func=_cmd_train)

    e = sub.add_parser("evaluate", help="evaluate the classifier on a EuroSAT-layout zip or folder (JSON on stdout)")
    e.add_argument("--data", required=True, help="zip or folder laid out as <Class>/<Class>_<n>.jpg")
    e.add_argument("--weights", default=None, help="weights file (default: LULC_WEIGHTS, else the shipped model)")
    e.add_argument("--tta", choices=["default", "on", "off"], default="default",
                   help="test-time augmentation over the 8 flips/rotations (default: as the weights say)")
    e.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    e.set_defaults(func=_cmd_evaluate)

    se = sub.add_parser("search", help="list acquisitions over an AOI in a date window, with cloud %%")
    se.add_argument("--aoi", required=True, help="AOI as GeoJSON or KML file")
    se.add_argument("--date", required=True, help="inclusive window YYYY-MM-DD/YYYY-MM-DD")
    se.add_argument("--json", action="store_true", help="print JSON instead of a table")
    _add_provider_args(se)
    se.set_defaults(func=_cmd_search)

    f = sub.add_parser("fetch", help="fetch a Scene (13 L1C bands in DN on the AOI's 10 m UTM grid) as GeoTIFF")
    f.add_argument("--aoi", required=True, help="AOI as GeoJSON or KML file")
    f.add_argument("--date", required=True, help="inclusive window YYYY-MM-DD/YYYY-MM-DD (one day: D/D)")
    f.add_argument("--out", required=True, help="GeoTIFF to write; masks go to <stem>.masks.tif")
    _add_provider_args(f)
    f.set_defaults(func=_cmd_fetch)

    c = sub.add_parser("compare", help="classify two dates over an AOI and write change exports")
    c.add_argument("--aoi", required=True, help="AOI as GeoJSON or KML file")
    c.add_argument("--date-a", required=True, help="earlier window YYYY-MM-DD/YYYY-MM-DD")
    c.add_argument("--date-b", required=True, help="later window YYYY-MM-DD/YYYY-MM-DD")
    c.add_argument("--out", required=True,
                   help="folder for classes_a/b.tif, change_10m.tif, change_cells.tif, cells.geojson, CSVs, report.html")
    c.add_argument("--level", choices=["group", "class"], default="group",
                   help="change between land-cover groups (default) or between the 10 classes")
    c.add_argument("--confidence", type=float, default=0.6,
                   help="joint probability of a cell's most probable pair of classes (at the level) under which it "
                        "is uncertain (default 0.6)")
    c.add_argument("--min-spectral", type=float, default=None,
                   help="share of a cell's 10 m pixels with spectral change that shows natural dynamics "
                        "(default: the tuned value shipped in lulc_core/data/change_model.json)")
    c.add_argument("--min-built-spectral", type=float, default=None,
                   help="share of changed 10 m pixels that makes a cell built-up on either date built-up change "
                        "where the deep change evidence is unavailable (default: the tuned value shipped in "
                        "lulc_core/data/change_model.json)")
    c.add_argument("--dense-weights", default=str(SHIPPED_DENSE),
                   help="dense (fully convolutional) classifier weights (default: shipped)")
    c.add_argument("--refine-below", type=float, default=None,
                   help="dense windows under this top probability are classified again one by one by the "
                        "per-window classifier (default: the tuned value in lulc_core/data/dense_refine.json; 0: off)")
    c.add_argument("--threads", type=int, default=None,
                   help="torch threads (default: all cores; on a region: cores / workers)")
    c.add_argument("--tiles", action="store_true",
                   help="run as tiles on Dask even when the AOI fits one analysis (regions above 2,500 km2 "
                        "or spanning UTM zones always do)")
    c.add_argument("--workers", type=int, default=None,
                   help="worker processes of the local Dask cluster (default: one per core, at most one per 3 GB)")
    c.add_argument("--tile-px", type=int, default=None,
                   help="a region's tile core in 10 m pixels, a multiple of 768 (default: the largest whose tile "
                        "fits one Process API request, 2304 = 23 km); implies --tiles")
    c.add_argument("--scheduler", default=None, help="address of a running Dask scheduler (tcp://host:8786) to use "
                                                    "instead of a local cluster")
    _add_provider_args(c)
    c.set_defaults(func=_cmd_compare)
    return p


def error_message(exc: BaseException) -> str:
    """One actionable line for any exception that ends a command."""
    from lulc_core.errors import LulcError

    if isinstance(exc, LulcError):
        return str(exc)
    if isinstance(exc, IsADirectoryError):
        return f"{exc.filename} is a folder where a file is expected; give the file's path"
    if isinstance(exc, NotADirectoryError):
        return f"{exc.filename}: a file is in the way where a folder is expected; give a folder path"
    if isinstance(exc, PermissionError):
        return f"no permission to use {exc.filename}; check the path or choose another one"
    if isinstance(exc, FileNotFoundError):
        return f"{exc.filename or exc}: no such file or folder"
    if isinstance(exc, OSError) and exc.errno == 28:
        return f"no space left on the disk{f' writing {exc.filename}' if exc.filename else ''}; free some and run again"
    if isinstance(exc, UnicodeDecodeError):
        return (f"a text file is not UTF-8 (byte 0x{exc.object[exc.start]:02x} at position {exc.start}); "
                "save it as UTF-8 and run again")
    if isinstance(exc, MemoryError):
        return "out of memory: use a smaller area of interest or close other programs"
    if isinstance(exc, (ValueError, OSError, RuntimeError)):
        return " ".join(str(exc).split()) or type(exc).__name__
    return (f"unexpected {type(exc).__name__}: {' '.join(str(exc).split())}; please report it "
            "(LULC_DEBUG=1 shows the traceback)")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.WARNING, format="warning: %(message)s", stream=sys.stderr)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        from lulc_core.settings import debug_enabled

        if debug_enabled():
            raise
        print(f"error: {error_message(exc)}", file=sys.stderr)
        return 2
