"""Training a EuroSAT RGB ResNet from the EuroSAT zip, with checkpoints, resume and calibration.

Reads the zip into memory (no unpacking), splits it stratified with a fixed seed into
train / validation / test, trains with nadir augmentations and a one-cycle schedule, saves a
checkpoint every epoch, fits temperature scaling on validation, and only then evaluates the
test part once. The result is a weights file with full metadata.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from lulc_core.classes import CLASS_NAMES
from lulc_core.model.architectures import build_resnet
from lulc_core.model.calibration import expected_calibration_error, fit_temperature, softmax
from lulc_core.model.eurosat_data import ImageSet, load_image_set, stratified_split
from lulc_core.model.inference import predict_logits
from lulc_core.model.recipes import EUROSAT_RGB
from lulc_core.model.transforms import augment, batch_loss
from lulc_core.model.weights import WeightsMetadata, file_sha256, save_weights

RECIPE = EUROSAT_RGB.description  # the registry key the classifiers look the recipe up by


@dataclass
class TrainConfig:
    data: Path
    out: Path
    run_dir: Path
    arch: str = "resnet18"
    stem: str = "s2"
    epochs: int = 18
    batch_size: int = 64
    lr: float = 0.05
    weight_decay: float = 5e-4
    seed: int = 0
    threads: int = 2
    bf16: bool = True
    pretrained: str | None = None
    resume: bool = False
    limit_train: int = 0  # for smoke tests: use only this many training images
    stop_after: int = 0  # stop after this many epochs in this run (resume later with --resume)
    init_from: Path | None = None  # start from these weights (a second, fine-tuning cycle)
    cutmix: float = 0.0  # probability that a batch is trained as CutMix (a box of another image pasted in)
    label_smoothing: float = 0.0
    ema: float = 0.0  # decay of an exponential moving average of the weights (0: off); the average is shipped


def _log(msg: str) -> None:
    print(f"[{dt.datetime.now():%H:%M:%S}] {msg}", file=sys.stderr, flush=True)




def test_report(logits: np.ndarray, labels: np.ndarray, temperature: float, mode: str) -> dict:
    """The evaluate-style report (per class, confusion matrix, most confused) of the test part."""
    from lulc_core.model.evaluate import classification_report

    report = classification_report(labels, softmax(logits, temperature), list(CLASS_NAMES))
    report["mode"] = mode
    return report


def _hardware() -> str:
    import os
    import platform

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} CPU cores visible, torch {torch.__version__}"


def _checkpoint(path: Path, **state) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def train(cfg: TrainConfig) -> WeightsMetadata | None:
    """Train, calibrate, test once and write the weights; None when stopped early (stop_after)."""
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    cfg.run_dir.mkdir(parents=True, exist_ok=True)
    t_start = time.time()
    _log(f"reading {cfg.data}")
    data = load_image_set(cfg.data, progress=lambda i, n: _log(f"decoded {i}/{n}") if i == n else None)
    tr_idx, va_idx, te_idx = stratified_split(data.labels, seed=cfg.seed)
    if cfg.limit_train:
        tr_idx = np.random.default_rng(cfg.seed).choice(tr_idx, cfg.limit_train, replace=False)
    _log(f"split: train {len(tr_idx)}, validation {len(va_idx)}, test {len(te_idx)}")
    (cfg.run_dir / "split.json").write_text(json.dumps(
        {"seed": cfg.seed, "train": [data.names[i] for i in tr_idx],
         "validation": [data.names[i] for i in va_idx], "test": [data.names[i] for i in te_idx]}))

    all_x = torch.from_numpy(data.images).permute(0, 3, 1, 2).contiguous()  # uint8 NCHW
    all_y = torch.from_numpy(data.labels)
    x_tr, y_tr = all_x[tr_idx], all_y[tr_idx]
    mean = (x_tr.float() / 255).mean(dim=(0, 2, 3)).tolist()
    std = (x_tr.float() / 255).std(dim=(0, 2, 3)).tolist()

    model = build_resnet(cfg.arch, cfg.stem, len(CLASS_NAMES), 3, cfg.pretrained)
    previous: dict = {}
    if cfg.init_from:
        from lulc_core.model.weights import load_weights

        init_model, init_meta = load_weights(Path(cfg.init_from))
        if (init_meta.architecture, init_meta.stem) != (cfg.arch, cfg.stem):
            raise ValueError(f"--init-from weights are {init_meta.architecture}/{init_meta.stem}, not {cfg.arch}/{cfg.stem}")
        model.load_state_dict(init_model.state_dict())
        previous = {k: init_meta.training.get(k) for k in ("epochs", "lr_schedule", "minutes", "history")}
        if init_meta.training.get("previous_cycle"):  # keep the whole chain of earlier cycles
            previous["previous_cycle"] = init_meta.training["previous_cycle"]
        _log(f"initialised from {cfg.init_from}")
    model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=0.9, nesterov=True,
                          weight_decay=cfg.weight_decay)
    steps_per_epoch = len(tr_idx) // cfg.batch_size
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, epochs=cfg.epochs,
                                                steps_per_epoch=steps_per_epoch, pct_start=0.2)
    gen = torch.Generator().manual_seed(cfg.seed)
    start_epoch, history = 0, []
    ckpt_path = cfg.run_dir / "last.pt"
    if cfg.resume and ckpt_path.exists():
        ck = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        model.load_state_dict(ck["model"]); opt.load_state_dict(ck["opt"])
        sched.load_state_dict(ck["sched"]); gen.set_state(ck["gen"])
        start_epoch, history = ck["epoch"] + 1, ck["history"]
        _log(f"resumed from {ckpt_path} after epoch {start_epoch}")
    loss_fn = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    averaged = None
    if cfg.ema:
        from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

        averaged = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema), use_buffers=True)
        if cfg.resume and ckpt_path.exists() and "ema" in ck:
            averaged.load_state_dict(ck["ema"])

    for epoch in range(start_epoch, cfg.epochs):
        if cfg.stop_after and epoch - start_epoch >= cfg.stop_after:
            _log(f"stopping after epoch {epoch} as asked; continue with --resume")
            return None
        model.train()
        t0 = time.time()
        perm = torch.randperm(len(x_tr), generator=gen)
        tot_loss, tot_correct, seen = 0.0, 0, 0
        for step in range(steps_per_epoch):
            b = perm[step * cfg.batch_size:(step + 1) * cfg.batch_size]
            x01 = augment(x_tr[b].float() / 255.0, gen)
            m = torch.tensor(mean).view(1, -1, 1, 1); s = torch.tensor(std).view(1, -1, 1, 1)
            x = ((x01 - m) / s).contiguous(memory_format=torch.channels_last)
            loss, logits, y = batch_loss(model, x, y_tr[b], loss_fn, cfg.cutmix, gen,
                                         dict(device_type="cpu", dtype=torch.bfloat16, enabled=cfg.bf16))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step(); sched.step()
            if averaged is not None:
                averaged.update_parameters(model)
            tot_loss += loss.item() * len(b); seen += len(b)
            tot_correct += (logits.argmax(1) == y).sum().item()
            if step % 50 == 0:
                _log(f"epoch {epoch + 1}/{cfg.epochs} step {step}/{steps_per_epoch} "
                     f"loss {tot_loss / seen:.4f} lr {sched.get_last_lr()[0]:.4f}")
        val_logits = predict_logits(model, all_x[va_idx], mean, std, bf16=cfg.bf16)
        val_acc = float((val_logits.argmax(1) == data.labels[va_idx]).mean())
        rec = {"epoch": epoch + 1, "train_loss": tot_loss / seen, "train_acc": tot_correct / seen,
               "val_acc": val_acc, "minutes": (time.time() - t0) / 60}
        if averaged is not None:
            z = predict_logits(averaged.module, all_x[va_idx], mean, std, bf16=cfg.bf16)
            rec["val_acc_ema"] = float((z.argmax(1) == data.labels[va_idx]).mean())
        history.append(rec)
        _log("EPOCH " + json.dumps(rec))
        _checkpoint(ckpt_path, model=model.state_dict(), opt=opt.state_dict(),
                    sched=sched.state_dict(), gen=gen.get_state(), epoch=epoch, history=history,
                    **({"ema": averaged.state_dict()} if averaged is not None else {}))

    if averaged is not None:  # the averaged weights are what is calibrated, tested and shipped
        model = averaged.module
    train_minutes = sum(h["minutes"] for h in history)
    training = {"epochs": cfg.epochs, "batch_size": cfg.batch_size, "optimizer": "SGD nesterov 0.9",
                "lr_schedule": f"one-cycle, max lr {cfg.lr}", "weight_decay": cfg.weight_decay,
                "precision": "bf16 autocast" if cfg.bf16 else "fp32",
                "augmentations": "dihedral (flips both axes, 90-degree rotations), "
                                 "brightness +-0.04, contrast +-10%"
                                 + (f", CutMix on {cfg.cutmix:.0%} of batches" if cfg.cutmix else ""),
                "label_smoothing": cfg.label_smoothing,
                "weight_averaging": f"EMA decay {cfg.ema} (shipped)" if cfg.ema else "none",
                "seed": cfg.seed, "hardware": _hardware(),
                "pretrained": cfg.pretrained or "none (from scratch)",
                "minutes": round(train_minutes + (previous.get("minutes") or 0), 1),
                "threads": cfg.threads, "history": history,
                **({"previous_cycle": previous} if previous else {})}
    meta = calibrate_test_and_save(model, data, (tr_idx, va_idx, te_idx), mean, std, training, cfg.out,
                                   cfg.run_dir, arch=cfg.arch, stem=cfg.stem, seed=cfg.seed, data_path=cfg.data)
    _log(f"wrote {cfg.out} ({cfg.out.stat().st_size / 1e6:.1f} MB) in {(time.time() - t_start) / 60:.1f} min")
    return meta


def calibrate_test_and_save(model: nn.Module, data: ImageSet, split: tuple[np.ndarray, np.ndarray, np.ndarray],
                            mean: list[float], std: list[float], training: dict, out: Path, run_dir: Path,
                            arch: str, stem: str, seed: int, data_path: Path) -> WeightsMetadata:
    """Fit temperatures on validation, choose TTA or not on validation, look at the test part
    once and write the weights with their metadata (``training`` is the training record)."""
    tr_idx, va_idx, te_idx = split
    run_dir.mkdir(parents=True, exist_ok=True)
    all_x = torch.from_numpy(data.images).permute(0, 3, 1, 2).contiguous()
    model = model.to(memory_format=torch.contiguous_format).eval()
    y_va, y_te = data.labels[va_idx], data.labels[te_idx]
    metrics: dict = {}
    temps, val_accuracy = {}, {}
    for tta in (False, True):
        key = "tta" if tta else "plain"
        z_va = predict_logits(model, all_x[va_idx], mean, std, tta=tta)
        temps[key] = fit_temperature(z_va, y_va)
        val_accuracy[key] = float((z_va.argmax(1) == y_va).mean())
        z_te = predict_logits(model, all_x[te_idx], mean, std, tta=tta)
        p_raw, p_cal = softmax(z_te), softmax(z_te, temps[key])
        metrics[key] = {
            "accuracy": float((z_te.argmax(1) == y_te).mean()),
            "ece_before": expected_calibration_error(p_raw, y_te),
            "ece_after": expected_calibration_error(p_cal, y_te),
            "temperature": temps[key],
            "n_images": int(len(y_te)),
        }
        np.save(run_dir / f"test_logits_{key}.npy", z_te)
        _log(f"TEST {key}: " + json.dumps(metrics[key]))

    # TTA or not is chosen on the validation part, never on the test figures
    best = "tta" if val_accuracy["tta"] >= val_accuracy["plain"] else "plain"
    z_best = np.load(run_dir / f"test_logits_{best}.npy")
    metrics["report"] = test_report(z_best, y_te, temps[best], best)
    meta = WeightsMetadata(
        architecture=arch, stem=stem, class_names=list(CLASS_NAMES),
        bands=list(EUROSAT_RGB.bands), recipe=RECIPE, norm_mean=mean, norm_std=std,
        temperature=temps["plain"], temperature_tta=temps["tta"],
        tta_default=best == "tta",
        training_data_sha256=file_sha256(data_path) if Path(data_path).is_file() else "",
        split={"seed": seed, "fractions": [0.8, 0.1, 0.1], "train": int(len(tr_idx)),
               "validation": int(len(va_idx)), "test": int(len(te_idx))},
        training={**training, "validation_accuracy": val_accuracy, "tta_chosen_on": "validation accuracy"},
        test_metrics=metrics,
        created=dt.date.today().isoformat(),
    )
    save_weights(out, model, meta)
    return meta
