"""Tensor transforms shared by training and inference: normalisation, augmentation, TTA."""

from __future__ import annotations

from typing import Sequence

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
            brightness: float = 0.04, contrast: float = 0.1) -> torch.Tensor:
    """Nadir-imagery augmentation on (N, C, H, W) values in 0..1.

    A random dihedral transform per image (flips on both axes, 90-degree rotations; no
    arbitrary angles, so pixels stay on the grid) and mild brightness / contrast jitter.
    """
    n = x01.shape[0]
    ks = torch.randint(0, 8, (n,), generator=generator)
    out = torch.empty_like(x01)
    for k in range(8):
        sel = ks == k
        if sel.any():
            out[sel] = dihedral(x01[sel], k)
    c = 1 + (torch.rand(n, 1, 1, 1, generator=generator) * 2 - 1) * contrast
    b = (torch.rand(n, 1, 1, 1, generator=generator) * 2 - 1) * brightness
    mean = out.mean(dim=(1, 2, 3), keepdim=True)
    return ((out - mean) * c + mean + b).clamp(0, 1)
