"""Train EuroSAT RGB ResNets on one GPU within a fixed wall-clock budget (the `device` machine).

Runs where only torch, numpy and Pillow are installed: the network and augmentations are read
from ``lulc_core/model/architectures.py`` and ``transforms.py`` by file path, so the package
(rasterio, pyproj, ...) is never imported. Input is the *training part only* of the project's
fixed split (``stratified_split(seed=0)`` of the EuroSAT RGB zip, packed by ``pack``): the
validation and test parts never leave this machine, and calibration, the TTA choice and the one
look at the test part happen here afterwards (``import``).

Each run is one process (several share the GPU); the number of epochs is fitted to the budget
after timing a few steps, so a one-cycle schedule always completes. Outputs per run: the EMA
weights in fp16 split in two files (the device returns files of at most 16 MiB) and a JSON
record (config, per-epoch loss and accuracy, wall time, GPU, torch version).

    python scripts/train_gpu.py pack --zip ../shared/data/eurosat/eurosat_rgb.zip --out .gpu
    python3 scripts/train_gpu.py train --data .gpu --out $OUT --budget-s 420 --runs a b
    python scripts/train_gpu.py import --runs-dir OUT --run a --zip ../shared/data/eurosat/eurosat_rgb.zip \
        --out lulc_core/weights/candidates/eurosat_rgb_resnet18_gpu.pt
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import lzma
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

#: The runs this script knows; all are the shipped architecture (ResNet-18, s2 stem).
RUNS: dict[str, dict] = {
    "a": dict(seed=0, max_epochs=240, batch=128, lr=0.1, wd=5e-4, cutmix=0.5, smoothing=0.1, shift=4, ema=0.999),
    "b": dict(seed=1, max_epochs=240, batch=128, lr=0.1, wd=5e-4, cutmix=0.0, smoothing=0.1, shift=4, ema=0.999),
    "c": dict(seed=2, max_epochs=240, batch=128, lr=0.1, wd=5e-4, cutmix=0.5, smoothing=0.1, shift=4, ema=0.999),
    "d": dict(seed=3, max_epochs=240, batch=128, lr=0.1, wd=5e-4, cutmix=0.8, smoothing=0.1, shift=4, ema=0.999),
    "smoke": dict(seed=0, max_epochs=2, batch=32, lr=0.05, wd=5e-4, cutmix=0.5, smoothing=0.1, shift=4, ema=0.99),
}


def _module(name: str):
    """A module of lulc_core.model loaded from its file (it imports torch only)."""
    spec = importlib.util.spec_from_file_location(f"_gpu_{name}", ROOT / "lulc_core" / "model" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def pack(zip_path: Path, out: Path) -> None:
    """Write the training part's JPEG bytes (xz) and an index (offsets, labels) to ``out``."""
    sys.path.insert(0, str(ROOT))
    from lulc_core.model.eurosat_data import _iter_members, _label_of, stratified_split

    members = [(m, read) for m, read in _iter_members(zip_path) if _label_of(m) is not None]
    labels = np.array([_label_of(m) for m, _ in members])
    train_idx, _, _ = stratified_split(labels, seed=0)
    blobs = [members[i][1]() for i in train_idx]
    out.mkdir(parents=True, exist_ok=True)
    (out / "train_jpegs.xz").write_bytes(lzma.compress(b"".join(blobs), preset=9 | lzma.PRESET_EXTREME))
    np.savez_compressed(out / "train_index.npz", offsets=np.cumsum([0] + [len(b) for b in blobs]),
                        labels=labels[train_idx], members=np.array([members[i][0] for i in train_idx]))
    print(f"packed {len(blobs)} training images ({sum(map(len, blobs)) / 1e6:.1f} MB of JPEG)")


def _decode(blob: bytes) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(blob)) as im:
        return np.asarray(im.convert("RGB"))


def load_packed(data: Path, limit: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Decoded training images (N, 64, 64, 3) uint8 and labels from a ``pack`` folder."""
    raw = lzma.decompress((data / "train_jpegs.xz").read_bytes())
    index = np.load(data / "train_index.npz")
    offsets, labels = index["offsets"], index["labels"]
    n = len(labels) if not limit else limit
    blobs = [raw[offsets[i]:offsets[i + 1]] for i in range(n)]
    with mp.get_context("fork").Pool(min(16, os.cpu_count() or 1)) as pool:
        images = np.stack(pool.map(_decode, blobs, chunksize=256))
    return images, labels[:n].astype(np.int64)


def train_run(name: str, data: Path, out: Path, budget_s: float, device: str, limit: int) -> None:
    """One run: fit the epochs to the budget, train with a one-cycle schedule, save the EMA."""
    import torch
    from torch import nn
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    t_start = time.time()
    cfg = RUNS[name]
    arch, tf = _module("architectures"), _module("transforms")
    torch.manual_seed(cfg["seed"])
    torch.backends.cudnn.benchmark = True
    images, labels = load_packed(data, limit)
    x_all = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous().to(device)  # uint8 NCHW
    y_all = torch.from_numpy(labels).to(device)
    x01 = x_all.float() / 255
    mean, std = x01.mean(dim=(0, 2, 3)).tolist(), x01.std(dim=(0, 2, 3)).tolist()
    del x01
    m = torch.tensor(mean, device=device).view(1, -1, 1, 1)
    s = torch.tensor(std, device=device).view(1, -1, 1, 1)
    model = arch.build_resnet("resnet18", "s2", 10, 3).to(device).to(memory_format=torch.channels_last)
    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(cfg["ema"]), use_buffers=True)
    gen = torch.Generator(device=device).manual_seed(cfg["seed"])
    host_gen = torch.Generator().manual_seed(cfg["seed"])  # CutMix's draws: no GPU synchronisation
    loss_fn = nn.CrossEntropyLoss(label_smoothing=cfg["smoothing"])
    n, bs = len(y_all), cfg["batch"]
    steps = n // bs
    amp = dict(device_type="cuda" if device.startswith("cuda") else "cpu", dtype=torch.bfloat16)

    def step(opt, sched, idx) -> tuple[float, int]:
        x = tf.augment(x_all[idx].float() / 255, gen, shift_px=cfg["shift"])
        x = ((x - m) / s).contiguous(memory_format=torch.channels_last)
        loss, logits, y = tf.batch_loss(model, x, y_all[idx], loss_fn, cfg["cutmix"], host_gen, amp)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if sched is not None:
            sched.step()
        ema.update_parameters(model)
        return loss.detach(), (logits.argmax(1) == y).sum()

    # time a few steps (on a throw-away optimiser) to fit the epochs into the budget
    probe = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
    state0 = {k: v.clone() for k, v in model.state_dict().items()}
    for i in range(25):
        if i == 5:
            sync(device); t0 = time.time()
        step(probe, None, torch.randint(0, n, (bs,), generator=gen, device=device))
    sync(device)
    step_s = (time.time() - t0) / 20
    model.load_state_dict(state0)
    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(cfg["ema"]), use_buffers=True)
    left = budget_s - (time.time() - t_start) - 20  # saving and slack
    epochs = max(1, min(cfg["max_epochs"], int(0.9 * left / (step_s * steps))))
    print(f"[{name}] {n} images, {steps} steps/epoch at {step_s * 1000:.1f} ms: {epochs} epochs", flush=True)

    opt = torch.optim.SGD(model.parameters(), lr=cfg["lr"], momentum=0.9, nesterov=True,
                          weight_decay=cfg["wd"])
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg["lr"], epochs=epochs,
                                                steps_per_epoch=steps, pct_start=0.15)
    history, t_train = [], time.time()
    for epoch in range(epochs):
        t0 = time.time()
        perm = torch.randperm(n, generator=gen, device=device)
        tot_loss = torch.zeros((), device=device); correct = torch.zeros((), device=device, dtype=torch.long)
        for i in range(steps):
            loss, ok = step(opt, sched, perm[i * bs:(i + 1) * bs])
            tot_loss += loss; correct += ok
        rec = {"epoch": epoch + 1, "train_loss": float(tot_loss) / steps, "train_acc": int(correct) / (steps * bs),
               "seconds": round(time.time() - t0, 2)}
        history.append(rec)
        if epoch % 10 == 0 or epoch == epochs - 1:
            print(f"[{name}] " + json.dumps(rec), flush=True)
    wall = time.time() - t_start
    state = {k: (v.half() if v.is_floating_point() else v).cpu().contiguous()
             for k, v in ema.module.state_dict().items()}
    out.mkdir(parents=True, exist_ok=True)
    for part, keys in enumerate(split_by_bytes(state)):
        torch.save({k: state[k] for k in keys}, out / f"run_{name}_{part}.pt")
    gpu = torch.cuda.get_device_name(0) if device.startswith("cuda") else "cpu"
    record = {"run": name, "config": cfg, "epochs": epochs, "steps_per_epoch": steps, "images": n,
              "norm_mean": mean, "norm_std": std, "history": history,
              "train_minutes": round((time.time() - t_train) / 60, 2), "wall_minutes": round(wall / 60, 2),
              "hardware": f"{gpu}, torch {torch.__version__}, {os.cpu_count()} CPU cores",
              "precision": "bf16 autocast", "optimizer": "SGD nesterov 0.9",
              "lr_schedule": f"one-cycle, max lr {cfg['lr']}, 15% warm-up",
              "augmentations": "dihedral (flips both axes, 90-degree rotations), shift up to "
                               f"{cfg['shift']} px (reflected), brightness +-0.04, contrast +-10%"
                               + (f", CutMix on {cfg['cutmix']:.0%} of batches" if cfg["cutmix"] else ""),
              "weight_averaging": f"EMA decay {cfg['ema']} (shipped)"}
    (out / f"run_{name}.json").write_text(json.dumps(record, indent=1))
    print(f"[{name}] done in {wall / 60:.1f} min", flush=True)


def split_by_bytes(state: dict) -> tuple[list[str], list[str]]:
    """The state dict's keys in two lists of about equal size in bytes (each file under 16 MiB)."""
    sizes = {k: v.numel() * v.element_size() for k, v in state.items()}
    total, run, first = sum(sizes.values()), 0, []
    for k in state:
        if run + sizes[k] > total / 2 and first:
            break
        first.append(k); run += sizes[k]
    return first, [k for k in state if k not in first]


def sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def previous_model_record(path: Path) -> dict:
    """The figures of the weights being replaced, kept in the new weights' training record so the
    Model page and the card can show them beside the new ones."""
    from lulc_core.model.cascades import tta_cascade_entry
    from lulc_core.model.weights import file_sha256, read_weights_blob

    meta = read_weights_blob(path)["metadata"]
    tm, tr = meta["test_metrics"], meta["training"]
    cascade = tta_cascade_entry(file_sha256(path)) or {}
    epochs, node = [], tr
    while node:
        epochs.append(node.get("epochs"))
        node = node.get("previous_cycle")
    return {"weights": path.name, "sha256": file_sha256(path), "created": meta.get("created"),
            "test_accuracy": {"plain": tm["plain"]["accuracy"], "tta": tm["tta"]["accuracy"],
                              "cascade": (cascade.get("test") or {}).get("cascade", {}).get("accuracy")},
            "ece_after": {"plain": tm["plain"]["ece_after"], "tta": tm["tta"]["ece_after"]},
            "validation_accuracy": tr.get("validation_accuracy"),
            "training": f"{' + '.join(str(e) for e in reversed(epochs))} epochs in {len(epochs)} cycles, "
                        f"{tr.get('minutes')} min on {tr.get('hardware', '2 CPU cores')}"}


def import_run(runs_dir: Path, chosen: str, zip_path: Path, out: Path, run_dir: Path,
               previous: Path | None = None) -> None:
    """Turn a device run into a weights file: validation accuracy of every run in ``runs_dir``
    (the choice), then temperatures, the TTA choice and the one test look for ``chosen``;
    ``previous``: the weights it replaces, whose figures go into the training record."""
    sys.path.insert(0, str(ROOT))
    import torch

    from lulc_core.model.architectures import build_resnet
    from lulc_core.model.eurosat_data import load_image_set, stratified_split
    from lulc_core.model.inference import predict_logits
    from lulc_core.model.train import calibrate_test_and_save

    data = load_image_set(zip_path)
    split = stratified_split(data.labels, seed=0)
    x_va = np.ascontiguousarray(data.images[split[1]].transpose(0, 3, 1, 2))
    y_va = data.labels[split[1]]
    models, records, val = {}, {}, {}
    for rec_path in sorted(runs_dir.glob("run_*.json")):
        rec = json.loads(rec_path.read_text())
        name = rec["run"]
        state = {}
        for part in sorted(runs_dir.glob(f"run_{name}_[0-9].pt")):
            state.update(torch.load(part, map_location="cpu", weights_only=True))
        state = {k: v.float() if v.is_floating_point() else v for k, v in state.items() if k != "n_averaged"}
        model = build_resnet("resnet18", "s2", 10, 3)
        model.load_state_dict(state)
        z = predict_logits(model.eval(), x_va, rec["norm_mean"], rec["norm_std"])
        val[name] = float((z.argmax(1) == y_va).mean())
        models[name], records[name] = model, rec
        print(f"run {name}: validation accuracy (plain, fp32) {100 * val[name]:.2f}%", flush=True)
    if chosen not in models:
        raise SystemExit(f"no run {chosen!r} in {runs_dir}; runs: {', '.join(sorted(models))}")
    rec, cfg = records[chosen], records[chosen]["config"]
    others = ", ".join(f"{n} {100 * v:.2f}% ({records[n]['config']['cutmix']:.0%} CutMix, seed "
                       f"{records[n]['config']['seed']}, {records[n]['epochs']} epochs)" for n, v in sorted(val.items()))
    training = {
        "epochs": rec["epochs"], "batch_size": cfg["batch"], "optimizer": rec["optimizer"],
        "lr_schedule": rec["lr_schedule"], "weight_decay": cfg["wd"], "precision": rec["precision"],
        "augmentations": rec["augmentations"], "label_smoothing": cfg["smoothing"],
        "weight_averaging": rec["weight_averaging"], "seed": cfg["seed"], "hardware": rec["hardware"],
        "pretrained": "none (from scratch)", "minutes": rec["train_minutes"], "threads": None,
        "device": "GPU",
        "history": [{"epoch": h["epoch"], "train_loss": h["train_loss"], "train_acc": h["train_acc"],
                     "minutes": h["seconds"] / 60} for h in rec["history"]],
        "selection": f"Run {chosen} of {len(val)} trained side by side on the GPU, chosen on validation accuracy "
                     f"(plain, fp32, {len(y_va)} images): {others}.",
        "command": f"python3 scripts/train_gpu.py train --data .gpu --out OUT --budget-s BUDGET --runs {chosen} "
                   f"(data packed by `python scripts/train_gpu.py pack --zip {zip_path.name}`), then "
                   f"`python scripts/train_gpu.py import --runs-dir OUT --run {chosen} --zip {zip_path.name} "
                   f"--out {out.name}`",
        **({"previous_model": previous_model_record(previous)} if previous else {}),
    }
    calibrate_test_and_save(models[chosen], data, split, rec["norm_mean"], rec["norm_std"], training, out, run_dir,
                            arch="resnet18", stem="s2", seed=0, data_path=zip_path)
    print(f"wrote {out}", flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pack", help="pack the training part of the EuroSAT RGB zip")
    p.add_argument("--zip", type=Path, required=True)
    p.add_argument("--out", type=Path, default=ROOT / ".gpu")
    t = sub.add_parser("train", help="train the named runs side by side")
    t.add_argument("--data", type=Path, default=ROOT / ".gpu")
    t.add_argument("--out", type=Path, required=True)
    t.add_argument("--budget-s", type=float, default=420, help="wall-clock seconds each run may take")
    t.add_argument("--runs", nargs="+", default=["a", "b"], choices=sorted(RUNS))
    t.add_argument("--device", default="cuda")
    t.add_argument("--limit", type=int, default=0, help="use only this many images (smoke test)")
    i = sub.add_parser("import", help="choose a run on validation and write its weights file (here, not on the GPU)")
    i.add_argument("--runs-dir", type=Path, required=True, help="the files the device brought back")
    i.add_argument("--run", required=True, help="the run to ship (chosen on the validation figures printed)")
    i.add_argument("--zip", type=Path, required=True, help="the EuroSAT RGB zip (validation and test parts)")
    i.add_argument("--out", type=Path, required=True)
    i.add_argument("--run-dir", type=Path, default=ROOT / "runs" / "gpu_import")
    i.add_argument("--previous", type=Path, help="the weights being replaced (their figures are kept beside)")
    args = ap.parse_args(argv)
    if args.cmd == "import":
        import_run(args.runs_dir, args.run, args.zip, args.out, args.run_dir, args.previous)
        return 0
    if args.cmd == "pack":
        pack(args.zip, args.out)
        return 0
    procs = [mp.get_context("spawn").Process(target=train_run, args=(r, args.data, args.out, args.budget_s,
                                                                       args.device, args.limit)) for r in args.runs]
    for pr in procs:
        pr.start()
    for pr in procs:
        pr.join()
    return max(pr.exitcode or 0 for pr in procs)


if __name__ == "__main__":
    sys.exit(main())
