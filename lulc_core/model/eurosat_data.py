"""Reading EuroSAT RGB images from a zip or folder laid out as ``<Class>/<Class>_<n>.jpg``.

The JPEGs are already the output of the EuroSAT RGB recipe (see :mod:`lulc_core.bands`), so
they feed the RGB model directly. Nothing is unpacked to disk.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
from PIL import Image

from lulc_core.classes import CLASS_NAMES

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif")


@dataclass
class ImageSet:
    """Decoded images: ``images`` (N, 64, 64, 3) uint8, ``labels`` (N,) int64, ``names``."""

    images: np.ndarray
    labels: np.ndarray
    names: list[str]

    def subset(self, idx: np.ndarray) -> "ImageSet":
        return ImageSet(self.images[idx], self.labels[idx], [self.names[i] for i in idx])

    def __len__(self) -> int:
        return len(self.names)


def _label_of(member: str) -> int | None:
    parts = Path(member).parts
    if len(parts) < 2 or not member.lower().endswith(IMAGE_SUFFIXES):
        return None
    cls = parts[-2]
    if cls not in CLASS_NAMES:
        raise ValueError(f"{member}: folder {cls!r} is not a EuroSAT class ({', '.join(CLASS_NAMES)})")
    return CLASS_NAMES.index(cls)


def _iter_members(path: Path) -> Iterator[tuple[str, Callable[[], bytes]]]:
    if path.is_dir():
        for p in sorted(path.rglob("*")):
            if p.is_file():
                yield p.relative_to(path).as_posix(), p.read_bytes
    elif zipfile.is_zipfile(path):
        zf = zipfile.ZipFile(path)
        for name in sorted(zf.namelist()):
            if not name.endswith("/"):
                yield name, (lambda n=name: zf.read(n))
    else:
        raise ValueError(f"{path}: not a folder or a zip file")


def load_image_set(path: str | Path, progress: Callable[[int, int], None] | None = None) -> ImageSet:
    """Decode every ``<Class>/<name>.jpg`` under a zip or folder into memory."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or folder")
    members = [(m, read) for m, read in _iter_members(path) if _label_of(m) is not None]
    if not members:
        raise ValueError(f"{path}: no images laid out as <Class>/<Class>_<n>.jpg")
    images = np.empty((len(members), 64, 64, 3), dtype=np.uint8)
    labels = np.empty(len(members), dtype=np.int64)
    names = []
    for i, (member, read) in enumerate(members):
        with Image.open(io.BytesIO(read())) as im:
            arr = np.asarray(im.convert("RGB"))
        if arr.shape != (64, 64, 3):
            raise ValueError(f"{member}: expected a 64x64 RGB image, got {arr.shape}")
        images[i] = arr
        labels[i] = _label_of(member)
        names.append(member)
        if progress and (i % 1000 == 0 or i == len(members) - 1):
            progress(i + 1, len(members))
    return ImageSet(images, labels, names)


def stratified_split(labels: np.ndarray, fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
                     seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices of a stratified train / validation / test split, reproducible from ``seed``."""
    rng = np.random.default_rng(seed)
    parts: tuple[list[int], list[int], list[int]] = ([], [], [])
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        rng.shuffle(idx)
        n_val = int(round(len(idx) * fractions[1]))
        n_test = int(round(len(idx) * fractions[2]))
        parts[2].extend(idx[:n_test])
        parts[1].extend(idx[n_test:n_test + n_val])
        parts[0].extend(idx[n_test + n_val:])
    return tuple(np.sort(np.array(p, dtype=np.int64)) for p in parts)  # type: ignore[return-value]
