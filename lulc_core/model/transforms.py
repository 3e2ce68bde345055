"""Tensor transforms shared by training and inference: normalisation, augmentation, TTA."""

from __future__ import annotations

from typing import Callable, Sequence

import torch


def normalise(x_uint8: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """(N, C, H, W) recipe values 0..255 -> float32 (x / 255 - mean) / std."""
    m = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
    return (x_uint8.float() / 255.0 - m) / s


def dihedral(x: torch.Tensor, k: int) -> torch.Tensor:
    """The k-th of the 8 flips / 90-degree rotations of (N, C, H, W) images (k = 0 is identity)."""
    if k >= 4:
        x = x.flip(-1)
    return torch.rot90(x, k % 4, dims=(-2, -1))


def augment(x01: torch.Tensor, generator: torch.Generator | None = None,
            brightness: float = 0.04, contrast: float = 0.1, shift_px: int = 0) -> torch.Tensor:
    """Nadir-imagery augmentation on (N, C, H, W) values in 0..1, on ``x01``'s device.

    A random dihedral transform per image (flips on both axes, 90-degree rotations; no
    arbitrary angles, so pixels stay on the grid), an optional whole-pixel shift of up to
    ``shift_px`` in each direction (reflected at the edges) and mild brightness / contrast
    jitter. ``generator`` must live on the images' device.
    """
    n, dev = x01.shape[0], x01.device
    ks = torch.randint(0, 8, (n,), generator=generator, device=dev)
    # all 8 views, then each image's own: no host-device synchronisation on a GPU
    out = torch.stack([dihedral(x01, k) for k in range(8)], 1)[torch.arange(n, device=dev), ks]
    if shift_px:
        out = random_shift(out, shift_px, generator)
    c = 1 + (torch.rand(n, 1, 1, 1, generator=generator, device=dev) * 2 - 1) * contrast
    b = (torch.rand(n, 1, 1, 1, generator=generator, device=dev) * 2 - 1) * brightness
    mean = out.mean(dim=(1, 2, 3), keepdim=True)
    return ((out - mean) * c + mean + b).clamp(0, 1)


def random_shift(x: torch.Tensor, max_px: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Shift each (C, H, W) image by a random whole number of pixels in -max_px..max_px on
    both axes, the uncovered edge filled by reflection."""
    n, _, h, w = x.shape
    padded = torch.nn.functional.pad(x, (max_px,) * 4, mode="reflect")
    oy, ox = (torch.randint(0, 2 * max_px + 1, (2, n), generator=generator, device=x.device))
    rows = (oy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]  # (N, 1, H, 1)
    cols = (ox[:, None] + torch.arange(w, device=x.device))[:, None, None, :]  # (N, 1, 1, W)
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    chan = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
    return padded[batch, chan, rows, cols]


def cutmix_batch(x: torch.Tensor, y: torch.Tensor, generator: torch.Generator | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
    """CutMix (Yun et al. 2019): a random box of each image is replaced by the same box of
    another image of the batch; returns images, both labels and the share ``lam`` of the first.
    The box is drawn on ``generator``'s device (a CPU generator spares a GPU batch any waiting)."""
    n, _, h, w = x.shape
    dev = generator.device if generator is not None else torch.device("cpu")
    lam = float(torch.rand(1, generator=generator, device=dev))  # Beta(1, 1), as in the paper
    perm = torch.randperm(n, generator=generator, device=dev).to(x.device)
    ch, cw = int(round(h * (1 - lam) ** 0.5)), int(round(w * (1 - lam) ** 0.5))
    cy = int(torch.randint(0, h, (1,), generator=generator, device=dev))
    cx = int(torch.randint(0, w, (1,), generator=generator, device=dev))
    y0, y1 = max(0, cy - ch // 2), min(h, cy + ch // 2)
    x0, x1 = max(0, cx - cw // 2), min(w, cx + cw // 2)
    x = x.clone()
    x[:, :, y0:y1, x0:x1] = x[perm, :, y0:y1, x0:x1]
    lam = 1 - (y1 - y0) * (x1 - x0) / (h * w)
    return x, y, y[perm], lam


def batch_loss(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn: Callable,
               cutmix: float, generator: torch.Generator | None, autocast: dict
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A training batch's loss, the batch mixed by CutMix with probability ``cutmix`` (drawn on
    ``generator``, a CPU one on a GPU); ``autocast``: :class:`torch.autocast`'s arguments.
    Returns the loss, the logits and the labels they are counted against (the first image's)."""
    mixed = cutmix > 0 and float(torch.rand(1, generator=generator)) < cutmix
    if mixed:
        x, y, y2, lam = cutmix_batch(x, y, generator)
    with torch.autocast(**autocast):
        logits = model(x)
    loss = loss_fn(logits.float(), y)
    if mixed:
        loss = lam * loss + (1 - lam) * loss_fn(logits.float(), y2)
    return loss, logits, y
