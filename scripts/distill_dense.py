"""Distil the per-window classifier into the dense (fully convolutional) path.

Unlabelled real Sentinel-2 L1C scenes (the OSCD imagery in ../shared/data/s2, imagery only, no
change maps) are the training set. The teacher is the shipped per-window classifier, one view,
calibrated (``--teacher tta`` uses its 8-view TTA instead, which is flip-invariant, so crops can
be flipped for free), evaluated on 64x64 windows every 16 px. The student is a copy of the same
ResNet fine-tuned so that its fully convolutional output matches the teacher's probabilities
(KL divergence) on random crops, batch norm frozen; a second stage fits a position-aware 4x4
head on the frozen trunk's features.

The demo areas are held out (never trained on) and give the agreement figures.

    python scripts/distill_dense.py targets          # teacher probabilities (about 4 min on 2 cores)
    python scripts/distill_dense.py targets --tta --step 32   # TTA teacher, for the eval's second figure
    python scripts/distill_dense.py train --minutes 35
    python scripts/distill_dense.py head --iters 300
    python scripts/distill_dense.py eval --out docs/dense_eval.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent

from lulc_core.bands import eurosat_rgb_recipe
from lulc_core.model.classifier import Classifier
from lulc_core.model.dense import (STEP_PX, WINDOW_PX, DenseClassifier, dense_logits, head_from_fc,
                                   kept_out_areas, metadata_for_student, trunk, windows_at)
from lulc_core.model.transforms import dihedral, normalise
from lulc_core.model.weights import (SHIPPED_DENSE, default_weights_path, load_dense_weights, load_weights,
                                     save_weights, weights_sha256)
from lulc_core.providers.demo import DEMO_AREAS, DemoProvider
from lulc_core.scene import DateWindow

HELD_OUT = DEMO_AREAS  # the bundled demo areas: evaluation only
RUN = ROOT / "runs" / "dense"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def scenes(shared: Path):
    """(area, date, recipe uint8 (3, H, W), valid) for every OSCD area and date."""
    root = shared / "data" / "s2" / "oscd"
    provider = DemoProvider(root, name="oscd")
    for area, info in sorted(provider.areas().items()):
        aoi = provider.area_aoi(area)
        for day in sorted(info["dates"]):
            scene = provider.fetch(aoi, DateWindow(day, day))
            rgb = scene.select(("B04", "B03", "B02"))
            yield area, day.isoformat(), eurosat_rgb_recipe(rgb, scene.valid), scene.valid


def teacher_targets(clf: Classifier, recipe: np.ndarray, valid: np.ndarray, step: int):
    """The teacher's probabilities (rows, cols, classes) of every window at ``step`` and each
    window's missing-pixel share."""
    win = windows_at(recipe, step)
    rows, cols = win.shape[:2]
    probs = clf.predict_recipe(np.ascontiguousarray(win.reshape(-1, 3, WINDOW_PX, WINDOW_PX))).reshape(rows, cols, -1)
    vwin = windows_at(valid[None].astype(np.uint8), step)
    return probs, 1 - vwin.reshape(rows, cols, -1).mean(-1)


def eurosat_mosaics(zip_path: Path, count: int, side: int, seed: int = 0):
    """``count`` mosaics of ``side`` x ``side`` EuroSAT images of the training part (seed-0 split, as
    the classifier's; never validation or test), placed at random: (name, recipe (3, H, W), valid).
    The JPEG values are the recipe's; windows straddling images are mixed scenes, as in real imagery."""
    from lulc_core.model.eurosat_data import load_image_set, stratified_split

    data = load_image_set(zip_path)
    train, _, _ = stratified_split(data.labels, seed=0)
    rng = np.random.default_rng(seed)
    for i in range(count):
        pick = rng.choice(train, side * side, replace=False)
        tiles = data.images[pick].reshape(side, side, WINDOW_PX, WINDOW_PX, 3)
        recipe = tiles.transpose(4, 0, 2, 1, 3).reshape(3, side * WINDOW_PX, side * WINDOW_PX)
        yield f"eurosat-mosaic_{i:03d}", np.ascontiguousarray(recipe), np.ones(recipe.shape[1:], bool)


def cmd_targets(args) -> None:
    out = RUN / f"targets_{'tta' if args.tta else 'plain'}"
    out.mkdir(parents=True, exist_ok=True)
    clf = Classifier(tta=args.tta, threads=2, tta_threshold=float("inf"), bf16=False)  # as distilled: fp32, full TTA
    teacher = weights_sha256(clf.weights)  # a file computed by other weights is computed again
    rng = np.random.default_rng(1)
    step = args.step
    for area, day, recipe, valid in scenes(Path(args.shared)):
        # the scene itself, then (training areas only) copies turned by a flip / rotation and shifted by
        # 4 or 12 px, the teacher recomputed on them: more positions and orientations for the student.
        # The refine cascade is tuned on windows shifted by 8 px (scripts/tune_dense_refine.py), so
        # those exact windows stay unseen.
        versions = [("", recipe, valid)]
        if area not in HELD_OUT:
            for j in range(args.augment):
                k, dy, dx = int(rng.integers(1, 8)), int(rng.choice([4, 12])), int(rng.choice([4, 12]))
                rec = dihedral(torch.from_numpy(recipe[:, dy:, dx:].copy())[None], k)[0].numpy()
                val = dihedral(torch.from_numpy(valid[dy:, dx:].copy())[None, None], k)[0, 0].numpy()
                versions.append((f"_aug{j}", np.ascontiguousarray(rec), np.ascontiguousarray(val)))
        for suffix, rec, val in versions:
            write_targets(out / f"{area}_{day}{suffix}.npz", clf, teacher, rec, val, step)
    if args.eurosat_mosaics:
        for name, rec, val in eurosat_mosaics(Path(args.eurosat), args.eurosat_mosaics, args.mosaic_side):
            write_targets(out / f"{name}.npz", clf, teacher, rec, val, step)
    # the command that wrote these targets, recorded by `train` in the weights' training record
    (out / "targets.json").write_text(json.dumps({"command": targets_command(args)}, indent=1))


def targets_command(args) -> str:
    """The ``targets`` command line of ``args`` (the options that shape the training data)."""
    return (f"python scripts/distill_dense.py targets --step {args.step}" + (" --tta" if args.tta else "")
            + (f" --augment {args.augment}" if args.augment else "")
            + (f" --eurosat-mosaics {args.eurosat_mosaics} --mosaic-side {args.mosaic_side}"
               if args.eurosat_mosaics else ""))


def recorded_targets_command(teacher: str) -> str:
    """The recorded ``targets`` command of the ``teacher`` targets (plain ``targets`` when unrecorded)."""
    try:
        return json.loads((RUN / f"targets_{teacher}" / "targets.json").read_text())["command"]
    except (OSError, ValueError, KeyError):
        return "python scripts/distill_dense.py targets"


def target_teacher(targets) -> str | None:
    """sha256 of the per-window weights whose probabilities an opened targets file holds (None:
    written before the teacher was recorded)."""
    return str(targets["teacher_sha256"]) if "teacher_sha256" in targets.files else None


def write_targets(path: Path, clf: Classifier, teacher: str, recipe: np.ndarray, valid: np.ndarray,
                  step: int) -> None:
    """The teacher's targets of one scene into ``path``, unless the file already holds this
    teacher's (``teacher``: sha256 of ``clf``'s weights)."""
    if path.exists():
        with np.load(path) as d:
            if target_teacher(d) == teacher:
                return
    t0 = time.time()
    probs, nodata = teacher_targets(clf, recipe, valid, step)
    np.savez_compressed(path, recipe=recipe, probs=probs, step=step, nodata=nodata, teacher_sha256=teacher)
    log(f"{path.stem}: {probs.shape[0]}x{probs.shape[1]} windows in {time.time() - t0:.0f} s")


def load_targets(held_out: bool, teacher: str = "plain", keep_out: tuple[str, ...] = ()):
    """The teacher's targets of the held-out (demo) or training scenes (never those of ``keep_out``
    areas); stops when a file was computed by other weights than the per-window classifier in use
    (:func:`default_weights_path`, the teacher that ``train`` and ``eval`` load; run ``targets`` again)."""
    out = []
    weights = default_weights_path()
    expected = weights_sha256(weights)
    for p in sorted((RUN / f"targets_{teacher}").glob("*.npz")):
        d = np.load(p)
        if target_teacher(d) != expected:
            sys.exit(f"{p} holds another teacher's probabilities than {weights.name}: "
                     "run `python scripts/distill_dense.py targets` again")
        area = p.stem.split("_")[0] if not p.stem.startswith("saclay") else "_".join(p.stem.split("_")[:2])
        if (area in HELD_OUT) == held_out and area not in keep_out:
            out.append((p.stem, d["recipe"], d["probs"], int(d["step"]), d["nodata"]))
    return out


def load_student_init(init: str):
    """The student to start from: the per-window classifier (``init`` empty), or a weights file; a
    dense file's position-aware head is dropped (training uses the uniform head; ``head`` fits a new one)."""
    if not init:
        return load_weights()
    model, meta, _ = load_dense_weights(Path(init))
    return model, meta


def train_config(args, keep_out: tuple[str, ...]) -> dict:
    """The options a resumed run must share with the run it resumes."""
    return {"init": args.init, "teacher": args.teacher, "keep_out": list(keep_out), "steps": args.steps,
            "lr": args.lr, "batch": args.batch, "seed": args.seed, "crops_px": list(CROPS_PX),
            "real_share": args.real_share}


def is_mosaic(name: str) -> bool:
    """Whether a targets file is a EuroSAT mosaic (not a real scene)."""
    return name.startswith("eurosat-mosaic")


CROPS_PX = (192, 256, 320)


def cmd_train(args) -> None:
    """Fine-tune the student on the teacher's targets. ``--minutes``: a cosine schedule over wall
    time, one sitting. ``--steps``: a cosine schedule over steps, checkpointed every
    ``--checkpoint-every`` steps (student, optimiser, losses, wall time) so that ``--resume`` goes
    on where an interrupted run stopped; each step's crops come from a generator seeded by
    (seed, step), so a resumed run draws what an uninterrupted one would have."""
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    teacher, meta = load_weights()
    student, init_meta = load_student_init(args.init)
    keep_out = tuple(a for a in args.keep_out.split(",") if a)
    if set(keep_out) & set(HELD_OUT):
        sys.exit("--keep-out names non-demo areas (the demo areas are held out already)")
    if args.init and keep_out and not set(keep_out) <= set(kept_out_areas(init_meta)) \
            and "distillation" in (init_meta.training or {}):
        sys.exit(f"{args.init} was distilled on {', '.join(sorted(set(keep_out) - set(kept_out_areas(init_meta))))}: "
                 "start from weights that never saw the areas kept out (e.g. no --init)")
    train, held = load_targets(False, args.teacher, keep_out), load_targets(True, args.teacher)
    real = [t for t in train if not is_mosaic(t[0])]
    mosaics = [t for t in train if is_mosaic(t[0])]
    log(f"train scenes {len(train)} ({len(real)} real, {len(mosaics)} EuroSAT mosaics), held-out scenes {len(held)}")
    if args.real_share is not None and not (real and mosaics):
        sys.exit("--real-share needs both real scenes and EuroSAT mosaics among the targets")
    for m in student.modules():  # BatchNorm statistics stay those of the per-window model
        if isinstance(m, torch.nn.BatchNorm2d):
            m.eval()
            m.requires_grad_(False)
    params = [p for p in student.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=1e-4)
    config = train_config(args, keep_out)
    checkpoint = Path(args.checkpoint)
    step_i, losses, wall_before, resumed, log_every = 0, [], 0.0, 0, 50
    if args.steps and args.resume and checkpoint.exists():
        state = torch.load(checkpoint, weights_only=False)
        if state["config"] != config:
            sys.exit(f"{checkpoint} was written by another run ({state['config']}); "
                     "start a new one without --resume or with the same options")
        student.load_state_dict(state["student"])
        opt.load_state_dict(state["optimizer"])
        step_i, losses, wall_before = state["step"], state["losses"], state["wall_s"]
        resumed = state["resumed"] + 1
        log(f"resumed {checkpoint} at step {step_i} of {args.steps} ({wall_before / 60:.1f} min so far)")
    else:
        log(f"naive FCN on held-out: {agreement_with_head(teacher, None, meta, held)}")
    deadline = time.time() + args.minutes * 60
    t_start = time.time()

    def save_checkpoint() -> None:
        tmp = checkpoint.with_suffix(".tmp")
        torch.save({"config": config, "student": student.state_dict(), "optimizer": opt.state_dict(),
                    "step": step_i, "losses": losses, "wall_s": wall_before + time.time() - t_start,
                    "resumed": resumed}, tmp)
        tmp.replace(checkpoint)

    last = min(args.steps, args.stop_at) if args.stop_at else args.steps
    while (step_i < last) if args.steps else (time.time() < deadline):
        frac = step_i / args.steps if args.steps else (time.time() - t_start) / (args.minutes * 60)
        for g in opt.param_groups:
            g["lr"] = args.lr * 0.5 * (1 + np.cos(np.pi * min(frac, 1.0)))
        rng = np.random.default_rng([args.seed, step_i])
        xs, ts, ms = [], [], []
        crop = int(rng.choice(CROPS_PX))
        for _ in range(args.batch):
            pool = train if args.real_share is None else (real if rng.random() < args.real_share else mosaics)
            name, recipe, probs, step, nodata = pool[rng.integers(len(pool))]
            nw = (crop - WINDOW_PX) // step + 1
            rows, cols = probs.shape[:2]
            if rows < nw or cols < nw:
                continue
            i, j = rng.integers(0, rows - nw + 1), rng.integers(0, cols - nw + 1)
            x = torch.from_numpy(recipe[:, i * step:i * step + crop, j * step:j * step + crop].copy())
            t = torch.from_numpy(probs[i:i + nw, j:j + nw]).permute(2, 0, 1)
            m = torch.from_numpy((nodata[i:i + nw, j:j + nw] <= 0.1).astype(np.float32))[None]
            k = int(rng.integers(8)) if args.teacher == "tta" else 0  # only the TTA teacher is flip-invariant
            xs.append(dihedral(x[None], k)[0]); ts.append(dihedral(t[None], k)[0]); ms.append(dihedral(m[None], k)[0])
        step_i += 1
        if not xs:
            continue
        x = normalise(torch.stack(xs), meta.norm_mean, meta.norm_std).contiguous(memory_format=torch.channels_last)
        t, m = torch.stack(ts), torch.stack(ms)
        kk = step // STEP_PX
        z = dense_logits(student, x)[:, :, ::kk, ::kk]
        logp = F.log_softmax(z, 1)
        kl = (t * (torch.log(t.clamp_min(1e-8)) - logp)).sum(1, keepdim=True)
        loss = (kl * m).sum() / m.sum().clamp_min(1)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if step_i % log_every == 0:
            log(f"step {step_i} loss {np.mean(losses[-log_every:]):.4f} lr {opt.param_groups[0]['lr']:.2e}")
        if args.steps and step_i % args.checkpoint_every == 0:
            save_checkpoint()
        if step_i % args.eval_every == 0:
            log(f"held-out: {agreement_with_head(student, None, meta, held)}")
    if args.steps:
        save_checkpoint()
        if step_i < args.steps:
            log(f"stopped at step {step_i} of {args.steps}: go on with the same command and --resume")
            return
    wall_s = wall_before + time.time() - t_start
    res_train = agreement_with_head(student, None, meta, train)
    res_held = agreement_with_head(student, None, meta, held)
    log(f"final train {res_train} held-out {res_held}")
    import platform

    info = {"teacher": ("shipped per-window classifier, TTA (8 dihedral views), calibrated" if args.teacher == "tta"
                        else "shipped per-window classifier, one view (no TTA), calibrated"),
            "data": "OSCD Sentinel-2 L1C imagery (no labels), areas other than the demo areas and those kept out, "
                    "with their turned and shifted copies and EuroSAT training-part mosaics as the targets command "
                    f"made them ({len(train)} scenes); teacher windows every {train[0][3]} px",
            "init": args.init or "shipped per-window classifier",
            "held_out_areas": list(HELD_OUT), "kept_out_areas": list(keep_out), "steps": step_i,
            "minutes": round(wall_s / 60, 1), "lr": args.lr, "seed": args.seed,
            "batch": args.batch, "crops_px": list(CROPS_PX), "loss": "KL(teacher || student)",
            "crops_from": ("a scene drawn uniformly" if args.real_share is None else
                           f"a real scene with probability {args.real_share}, else a EuroSAT mosaic"),
            "batchnorm": "frozen (per-window statistics)",
            "hardware": f"{platform.machine()} CPU, {args.threads} torch thread(s)", "resumed": resumed,
            "agreement_train_areas": res_train, "agreement_held_out": res_held,
            "command": f"{recorded_targets_command(args.teacher)} && python scripts/distill_dense.py train "
                       + (f"--steps {args.steps} --batch {args.batch} --seed {args.seed}" if args.steps
                          else f"--minutes {args.minutes}")
                       + (f" --real-share {args.real_share}" if args.real_share is not None else "")
                       + f" --lr {args.lr} --teacher {args.teacher}"
                       + (f" --init {Path(args.init).name}" if args.init else "")
                       + (f" --keep-out {','.join(keep_out)}" if keep_out else "")}
    save_weights(Path(args.out), student, metadata_for_student(meta, info), half=True)
    (RUN / "distill.json").write_text(json.dumps(info, indent=1))
    log(f"wrote {args.out}")


def cmd_head(args) -> None:
    """Second stage: a position-aware 4x4 head on the distilled trunk's features (trunk frozen)."""
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    student, meta, _ = load_dense_weights(Path(args.student))  # any earlier head is replaced
    train, held = load_targets(False, "plain", kept_out_areas(meta)), load_targets(True, "plain")
    if args.mosaics is not None:  # the first N EuroSAT mosaics only (sorted by name), every real scene
        train = [t for t in train if not is_mosaic(t[0])] + [t for t in train if is_mosaic(t[0])][:args.mosaics]
    log(f"head fitted on {len(train)} scenes ({sum(is_mosaic(t[0]) for t in train)} EuroSAT mosaics)")

    def features(data):
        out = []
        with torch.no_grad():
            for _, recipe, probs, step, nodata in data:
                assert step == STEP_PX, "the head is fitted on windows at every 16 px"
                f = trunk(student, normalise(torch.from_numpy(recipe)[None], meta.norm_mean, meta.norm_std))
                t = torch.from_numpy(probs).permute(2, 0, 1)[None]
                m = torch.from_numpy((nodata <= 0.1).astype(np.float32))[None, None]
                out.append((f, t, m))
        return out

    def kl(head, feats):
        total, n = 0.0, 0.0
        for f, t, m in feats:
            z = head(f)[:, :, : t.shape[2], : t.shape[3]]
            k = (t * (torch.log(t.clamp_min(1e-8)) - F.log_softmax(z, 1))).sum(1, keepdim=True)
            total = total + (k * m).sum()
            n += float(m.sum())
        return total / max(n, 1.0)

    def agree(head, feats):
        a = n = 0
        with torch.inference_mode():
            for f, t, m in feats:
                z = head(f)[:, :, : t.shape[2], : t.shape[3]]
                ok = m[0, 0] > 0
                a += int((z.argmax(1)[0] == t.argmax(1)[0])[ok].sum())
                n += int(ok.sum())
        return a / max(n, 1)

    ftr, fho = features(train), features(held)
    head = head_from_fc(student.fc)
    init = [p.detach().clone() for p in head.parameters()]
    log(f"uniform head: train agreement {agree(head, ftr):.4f}")
    opt = torch.optim.Adam(head.parameters(), lr=args.lr)
    for it in range(1, args.iters + 1):
        loss = kl(head, ftr) + args.l2 * sum(((p - p0) ** 2).sum() for p, p0 in zip(head.parameters(), init))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if it % 50 == 0:
            log(f"iter {it} loss {loss.item():.4f} train agreement {agree(head, ftr):.4f}")
    info = dict((meta.training or {}).get("distillation") or {})  # the student's own record (kept-out areas too)
    info["position_aware_head"] = {"iters": args.iters, "lr": args.lr, "l2_to_uniform": args.l2,
                                   "train_agreement": agree(head, ftr), "held_out_agreement": agree(head, fho),
                                   "scenes": len(train), "eurosat_mosaics": sum(is_mosaic(t[0]) for t in train),
                                   "command": f"python scripts/distill_dense.py head --iters {args.iters}"
                                              + (f" --mosaics {args.mosaics}" if args.mosaics is not None else "")}
    log(f"held-out agreement with the position-aware head: {info['position_aware_head']['held_out_agreement']:.4f}")
    res_held = agreement_with_head(student, head, meta, held)
    info["agreement_held_out"] = res_held
    info["agreement_train_areas"] = agreement_with_head(student, head, meta, train)
    save_weights(Path(args.out), student, metadata_for_student(meta, info), dense_head=head)
    (RUN / "distill.json").write_text(json.dumps(info, indent=1))
    log(f"wrote {args.out}: held-out {res_held}")


def agreement_with_head(model, head, meta, data) -> dict:
    """Top-1 agreement with the teacher: on all windows (>= 90% valid), and on windows where both
    are confident (top probability >= 0.6: the ones the change decision counts)."""
    agree_n, total, tv, agree_c, total_c = 0, 0, 0.0, 0, 0
    with torch.inference_mode():
        for _, recipe, probs, step, nodata in data:
            z = dense_logits(model, normalise(torch.from_numpy(recipe)[None], meta.norm_mean, meta.norm_std), head)
            k = step // STEP_PX
            z = z[0].permute(1, 2, 0).numpy()[::k, ::k][: probs.shape[0], : probs.shape[1]]
            p = torch.softmax(torch.from_numpy(z), -1).numpy()
            ok = nodata <= 0.1
            same = p.argmax(-1) == probs.argmax(-1)
            conf = ok & (p.max(-1) >= 0.6) & (probs.max(-1) >= 0.6)
            agree_n += int(same[ok].sum())
            total += int(ok.sum())
            agree_c += int(same[conf].sum())
            total_c += int(conf.sum())
            tv += float(0.5 * np.abs(p - probs).sum(-1)[ok].sum())
    return {"agreement": agree_n / max(total, 1), "mean_tv": tv / max(total, 1), "windows": total,
            "agreement_both_confident": agree_c / max(total_c, 1), "windows_both_confident": total_c}


def cmd_eval(args) -> None:
    torch.set_num_threads(args.threads)
    teacher, meta = load_weights()
    dense = DenseClassifier(args.weights)
    naive, distilled = {}, {}
    for kind in ("plain", "tta"):
        held = load_targets(True, kind)
        if held:
            naive[f"vs_per_window_{kind}"] = agreement_with_head(teacher, None, meta, held)
            distilled[f"vs_per_window_{kind}"] = agreement_with_head(dense.model, dense.head, dense.meta, held)
    tta_held = load_targets(True, "tta")
    if tta_held:  # for scale: the per-window classifier without vs with its own TTA, same windows
        plain_clf = Classifier(tta=False)
        a = n = 0
        for _, rec, probs, step, nodata in tta_held:
            p = plain_clf.predict_recipe(np.ascontiguousarray(windows_at(rec, step).reshape(-1, 3, WINDOW_PX, WINDOW_PX)))
            ok = (nodata <= 0.1).reshape(-1)
            a += int((p.argmax(1) == probs.reshape(-1, probs.shape[-1]).argmax(1))[ok].sum())
            n += int(ok.sum())
        distilled["per_window_plain_vs_per_window_tta"] = {"agreement": a / max(n, 1), "windows": n}
    held = load_targets(True, "plain")
    # seconds per km2: dense path over a whole held-out scene vs the per-window path on 64 px patches
    name, recipe, *_ = held[0]
    km2 = recipe.shape[1] * recipe.shape[2] / 1e4
    t0 = time.time(); dense.logits_recipe(recipe); t_dense = time.time() - t0
    clf = Classifier()
    patches = windows_at(recipe, WINDOW_PX).reshape(-1, 3, WINDOW_PX, WINDOW_PX)
    t0 = time.time(); clf.predict_recipe(np.ascontiguousarray(patches)); t_win = time.time() - t0
    clf.tta = False
    t0 = time.time(); clf.predict_recipe(np.ascontiguousarray(patches)); t_plain = time.time() - t0
    eurosat = {}
    zip_path = Path(args.eurosat)
    if zip_path.exists():  # the 64 px path keeps the shipped weights: its accuracy is unchanged by construction
        from lulc_core.model.eurosat_data import load_image_set, stratified_split

        data = load_image_set(zip_path)
        _, _, test = stratified_split(data.labels, seed=0)
        x = np.ascontiguousarray(data.images[test].transpose(0, 3, 1, 2))
        y = data.labels[test]
        for label, model, head in (("per_window_64px_path_shipped_weights", clf.model, None),
                                   ("dense_student_on_64px_images", dense.model, dense.head)):
            with torch.inference_mode():
                z = torch.cat([dense_logits(model, normalise(torch.from_numpy(x[i:i + 256]), meta.norm_mean,
                                                             meta.norm_std), head)[:, :, 0, 0]
                               for i in range(0, len(x), 256)])
            eurosat[label] = {"test_part_accuracy_plain": round(float((z.argmax(1).numpy() == y).mean()), 4),
                             "n_images": int(len(y))}
    res = {"held_out_areas": list(HELD_OUT), "naive_fcn": naive, "distilled": distilled, "eurosat": eurosat,
           "timing_scene": name, "km2": km2,
           "dense_s_per_km2_16px_step": t_dense / km2,
           "per_window_tta_s_per_km2_64px_step": t_win / km2,
           "per_window_plain_s_per_km2_64px_step": t_plain / km2,
           "per_window_tta_s_per_km2_16px_step_estimate": 16 * t_win / km2}
    print(json.dumps(res, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(res, indent=1))


def main() -> None:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("targets"); p.add_argument("--shared", default=str(ROOT.parent / "shared"))
    p.add_argument("--step", type=int, default=16); p.add_argument("--tta", action="store_true")
    p.add_argument("--augment", type=int, default=0, help="turned and shifted copies of each training scene")
    p.add_argument("--eurosat-mosaics", type=int, default=0, help="mosaics of EuroSAT training images")
    p.add_argument("--mosaic-side", type=int, default=8)
    p.add_argument("--eurosat", default=str(ROOT.parent / "shared" / "data" / "eurosat" / "eurosat_rgb.zip"))
    p = sub.add_parser("train"); p.add_argument("--minutes", type=float, default=40)
    p.add_argument("--lr", type=float, default=1e-4); p.add_argument("--batch", type=int, default=4)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--init", default="", help="weights to start from (a dense file's head is dropped)")
    p.add_argument("--steps", type=int, default=0, help="a checkpointed run of this many steps (instead of --minutes)")
    p.add_argument("--resume", action="store_true", help="go on from --checkpoint (same options)")
    p.add_argument("--checkpoint", default=str(RUN / "train_checkpoint.pt"))
    p.add_argument("--checkpoint-every", type=int, default=50)
    p.add_argument("--stop-at", type=int, default=0, help="stop (checkpointed) at this step, to --resume later")
    p.add_argument("--eval-every", type=int, default=300, help="log the held-out agreement every N steps")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--real-share", type=float, default=None,
                   help="share of crops from real scenes (the rest from EuroSAT mosaics); default: scenes drawn uniformly")
    p.add_argument("--teacher", choices=["plain", "tta"], default="plain")
    p.add_argument("--keep-out", default="", help="non-demo areas (comma-separated) kept out of distillation, "
                                                  "so that the refine cascade is tuned on windows never seen")
    p.add_argument("--out", default=str(SHIPPED_DENSE))
    p = sub.add_parser("head"); p.add_argument("--student", default=str(SHIPPED_DENSE))
    p.add_argument("--iters", type=int, default=300); p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--l2", type=float, default=1e-3); p.add_argument("--threads", type=int, default=2)
    p.add_argument("--mosaics", type=int, default=None, help="fit on the first N EuroSAT mosaics only (default: all)")
    p.add_argument("--out", default=str(SHIPPED_DENSE))
    p = sub.add_parser("eval"); p.add_argument("--weights", default=str(SHIPPED_DENSE))
    p.add_argument("--eurosat", default=str(ROOT.parent / "shared" / "data" / "eurosat" / "eurosat_rgb.zip"))
    p.add_argument("--out", default="")
    p.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    {"targets": cmd_targets, "train": cmd_train, "head": cmd_head, "eval": cmd_eval}[args.cmd](args)


if __name__ == "__main__":
    main()
