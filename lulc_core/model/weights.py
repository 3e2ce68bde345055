"""Shipped weights and their metadata (the model's documented input contract).

A weights file is a ``torch.save`` dict ``{"metadata": {...}, "state_dict": {...}}`` readable
with ``weights_only=True``. The metadata states everything needed to feed the model correctly:
architecture, class names in output order, input bands in channel order, the value recipe,
normalisation, and calibration temperatures.

Weights files are untrusted input: :func:`read_weights_blob` checks the container (a torch zip
archive), loads it with ``torch.load(weights_only=True)`` (tensors and plain containers only, so a
pickle that would run code is refused, never executed) and checks the metadata before any model is
built; every failure is a :class:`~lulc_core.errors.WeightsError` saying what to do.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
import functools
import hashlib
import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lulc_core.errors import WeightsError
from lulc_core.model.architectures import build_resnet

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"


def file_sha256(path: Path) -> str:
    """sha256 of a file, read in 1 MB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@functools.lru_cache(maxsize=8)
def _cached_sha256(path: str, mtime_ns: int, size: int) -> str:
    return file_sha256(Path(path))


def weights_sha256(path: str | Path) -> str:
    """sha256 of a weights file (cached while the file is unchanged): what shipped thresholds are matched by."""
    st = Path(path).stat()
    return _cached_sha256(str(Path(path).resolve()), st.st_mtime_ns, st.st_size)
#: The shipped model; ``LULC_WEIGHTS`` points the library at another weights file.
DEFAULT_WEIGHTS = Path(os.environ.get("LULC_WEIGHTS", WEIGHTS_DIR / "eurosat_rgb_resnet18.pt"))


@dataclass
class WeightsMetadata:
    """What a set of weights expects and how well it did."""

    architecture: str
    stem: str
    class_names: list[str]
    bands: list[str]
    recipe: str
    norm_mean: list[float]
    norm_std: list[float]
    temperature: float = 1.0
    temperature_tta: float = 1.0
    tta_default: bool = True
    training_data_sha256: str = ""
    split: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    test_metrics: dict[str, Any] = field(default_factory=dict)
    created: str = ""

    @property
    def training_cycles(self) -> list[dict[str, Any]]:
        """Training cycles, oldest first (each later cycle started from the previous one's weights)."""
        cycles, node = [], self.training
        while node:
            cycles.insert(0, node)
            node = node.get("previous_cycle")
        return cycles

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "WeightsMetadata":
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def save_weights(path: Path, model: nn.Module, meta: WeightsMetadata, half: bool = True) -> None:
    """Write weights (fp16 by default) and metadata to ``path`` atomically."""
    state = {k: (v.half() if half and v.is_floating_point() else v).contiguous()
             for k, v in model.state_dict().items()}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save({"metadata": asdict(meta), "state_dict": state}, tmp)
    tmp.replace(path)


#: Largest weights file read (a ResNet-50 in fp32 is about 100 MB).
MAX_WEIGHTS_BYTES = 1024 * 2**20
_USE = "use a weights file written by this project (python -m lulc_core train) or the shipped one"
_REQUIRED = ("architecture", "stem", "class_names", "bands", "recipe", "norm_mean", "norm_std")


def read_weights_blob(path: str | Path) -> dict[str, Any]:
    """A weights file's ``{"metadata", "state_dict"}`` dict, checked; :class:`WeightsError` otherwise."""
    path = Path(path)
    if not path.exists():
        raise WeightsError(f"weights file {path} not found; {_USE}")
    if path.is_dir():
        raise WeightsError(f"{path} is a folder; give the weights file itself (.pt)")
    size = path.stat().st_size
    if size > MAX_WEIGHTS_BYTES:
        raise WeightsError(f"{path} is {size / 2**20:,.0f} MB, more than any model here needs; {_USE}")
    if not zipfile.is_zipfile(path):
        raise WeightsError(f"{path} is not a PyTorch weights file (not a torch.save archive); {_USE}")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise WeightsError(f"{path} was refused: it holds Python objects other than tensors and plain data, "
                           f"which could run code when loaded; {_USE}") from None
    except (RuntimeError, ValueError, EOFError, OSError, zipfile.BadZipFile, KeyError) as exc:
        raise WeightsError(f"{path} can't be read as PyTorch weights ({' '.join(str(exc).split())[:160]}); "
                           f"the file may be truncated or damaged: copy it again, or {_USE}") from None
    if not isinstance(blob, dict) or not isinstance(blob.get("metadata"), dict) or \
            not isinstance(blob.get("state_dict"), dict):
        raise WeightsError(f"{path} has no metadata (expected a dict with 'metadata' and 'state_dict', as this "
                           f"project writes): the model's classes and bands can't be known; {_USE}")
    check_metadata(blob["metadata"], path)
    if not all(isinstance(v, torch.Tensor) for v in blob["state_dict"].values()):
        raise WeightsError(f"{path}: its state_dict holds values that are not tensors; {_USE}")
    return blob


def check_metadata(meta: dict[str, Any], path: str | Path = "weights") -> None:
    """Raise :class:`WeightsError` unless ``meta`` states a model this project can build and feed."""
    from lulc_core.model.architectures import ARCHITECTURES

    missing = [k for k in _REQUIRED if k not in meta]
    if missing:
        raise WeightsError(f"{path}: its metadata lacks {', '.join(missing)}; {_USE}")
    if meta["architecture"] not in ARCHITECTURES:
        raise WeightsError(f"{path}: unknown architecture {meta['architecture']!r} in its metadata (known: "
                           f"{', '.join(ARCHITECTURES)}); {_USE}")
    for k in ("class_names", "bands"):
        if not (isinstance(meta[k], list) and meta[k] and all(isinstance(x, str) for x in meta[k])):
            raise WeightsError(f"{path}: metadata {k!r} must be a non-empty list of names; {_USE}")
    for k in ("norm_mean", "norm_std"):
        v = meta[k]
        if not (isinstance(v, list) and len(v) == len(meta["bands"]) and all(isinstance(x, (int, float)) for x in v)):
            raise WeightsError(f"{path}: metadata {k!r} must give one number per band; {_USE}")


def load_weights(path: Path = DEFAULT_WEIGHTS) -> tuple[nn.Module, WeightsMetadata]:
    """Load a weights file into an fp32 model in eval mode, with its metadata. No network."""
    return model_from_blob(read_weights_blob(path), path)


def model_from_blob(blob: dict[str, Any], path: str | Path = "weights") -> tuple[nn.Module, WeightsMetadata]:
    """The fp32 model (eval mode) and metadata of a loaded weights dict."""
    check_metadata(blob["metadata"], path)
    meta = WeightsMetadata.from_dict(blob["metadata"])
    model = build_resnet(meta.architecture, meta.stem, num_classes=len(meta.class_names),
                         in_channels=len(meta.bands))
    try:
        model.load_state_dict({k: v.float() if v.is_floating_point() else v
                               for k, v in blob["state_dict"].items()})
    except RuntimeError as exc:
        first = next((line.strip() for line in str(exc).splitlines()[1:] if line.strip()), "")
        raise WeightsError(f"{path}: the weights don't fit the {meta.architecture} ({meta.stem} stem, "
                           f"{len(meta.class_names)} classes, {len(meta.bands)} bands) their metadata describes "
                           f"({first[:160]}); the file was edited or belongs to another model: {_USE}") from None
    return model.eval(), meta
