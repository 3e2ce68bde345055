"""Weights files of both models (the per-window classifier and the dense student) and their
metadata (the model's documented input contract).

A weights file is a ``torch.save`` dict ``{"metadata": {...}, "state_dict": {...}}`` readable
with ``weights_only=True``. The metadata states everything needed to feed the model correctly:
architecture, class names in output order, input bands in channel order, the value recipe,
normalisation, and calibration temperatures. A dense weights file also holds its position-aware
head under the keys ``dense_head.*`` (:func:`load_dense_weights`).

Weights files are untrusted input: :func:`read_weights_blob` checks the container (a torch zip
archive), loads it with ``torch.load(weights_only=True)`` (tensors and plain containers only, so a
pickle that would run code is refused, never executed) and checks the metadata, recipe included,
before any model is built; every failure is a :class:`~lulc_core.errors.WeightsError` saying what
to do. Both models are read and written here (:func:`load_weights`, :func:`load_dense_weights`,
:func:`save_weights`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
import functools
import hashlib
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lulc_core.errors import USE_PROJECT_WEIGHTS, WeightsError
from lulc_core.model.architectures import build_resnet
from lulc_core.model.recipes import recipe_for
from lulc_core.settings import Settings, load_settings

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
#: The shipped per-window classifier (``LULC_WEIGHTS`` runs another one: :func:`default_weights_path`).
SHIPPED_RGB = WEIGHTS_DIR / "eurosat_rgb_resnet18.pt"
#: The shipped dense student, distilled from :data:`SHIPPED_RGB` (``scripts/distill_dense.py``).
SHIPPED_DENSE = WEIGHTS_DIR / "eurosat_rgb_resnet18_dense.pt"
#: Prefix of the dense head's keys in a dense weights file's state dict.
DENSE_HEAD_PREFIX = "dense_head."


def default_weights_path(settings: Settings | None = None) -> Path:
    """The per-window classifier's weights: ``LULC_WEIGHTS`` as set now (``settings``, default
    :func:`~lulc_core.settings.load_settings`), else :data:`SHIPPED_RGB`."""
    return (load_settings() if settings is None else settings).weights_path or SHIPPED_RGB


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


def save_weights(path: Path, model: nn.Module, meta: WeightsMetadata, half: bool = True,
                 dense_head: nn.Conv2d | None = None) -> None:
    """Write weights (fp16 by default) and metadata to ``path`` atomically; a dense student's
    position-aware ``dense_head`` goes with them (keys ``dense_head.*``)."""
    state = {k: (v.half() if half and v.is_floating_point() else v).contiguous()
             for k, v in model.state_dict().items()}
    if dense_head is not None:
        state.update({DENSE_HEAD_PREFIX + k: (v.half() if half else v).contiguous()
                      for k, v in dense_head.state_dict().items()})
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save({"metadata": asdict(meta), "state_dict": state}, tmp)
    tmp.replace(path)


#: Largest weights file read (a ResNet-50 in fp32 is about 100 MB).
MAX_WEIGHTS_BYTES = 1024 * 2**20
_REQUIRED = ("architecture", "stem", "class_names", "bands", "recipe", "norm_mean", "norm_std")


def read_weights_blob(path: str | Path) -> dict[str, Any]:
    """A weights file's ``{"metadata", "state_dict"}`` dict, checked; :class:`WeightsError` otherwise."""
    path = Path(path)
    if not path.exists():
        raise WeightsError(f"weights file {path} not found")
    if path.is_dir():
        raise WeightsError(f"{path} is a folder", "give the weights file itself (.pt)")
    size = path.stat().st_size
    if size > MAX_WEIGHTS_BYTES:
        raise WeightsError(f"{path} is {size / 2**20:,.0f} MB, more than any model here needs")
    if not zipfile.is_zipfile(path):
        raise WeightsError(f"{path} is not a PyTorch weights file (not a torch.save archive)")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise WeightsError(f"{path} was refused: it holds Python objects other than tensors and plain data, "
                           f"which could run code when loaded") from None
    except (RuntimeError, ValueError, EOFError, OSError, zipfile.BadZipFile, KeyError) as exc:
        raise WeightsError(f"{path} can't be read as PyTorch weights ({' '.join(str(exc).split())[:160]}); "
                           "the file may be truncated or damaged", f"copy it again, or {USE_PROJECT_WEIGHTS}") from None
    if not isinstance(blob, dict) or not isinstance(blob.get("metadata"), dict) or \
            not isinstance(blob.get("state_dict"), dict):
        raise WeightsError(f"{path} has no metadata (expected a dict with 'metadata' and 'state_dict', as this "
                           f"project writes): the model's classes and bands can't be known")
    check_metadata(blob["metadata"], path)
    if not all(isinstance(v, torch.Tensor) for v in blob["state_dict"].values()):
        raise WeightsError(f"{path}: its state_dict holds values that are not tensors")
    return blob


def check_metadata(meta: dict[str, Any], path: str | Path = "weights") -> None:
    """Raise :class:`WeightsError` unless ``meta`` states a model this project can build and feed."""
    from lulc_core.model.architectures import ARCHITECTURES

    missing = [k for k in _REQUIRED if k not in meta]
    if missing:
        raise WeightsError(f"{path}: its metadata lacks {', '.join(missing)}")
    if meta["architecture"] not in ARCHITECTURES:
        raise WeightsError(f"{path}: unknown architecture {meta['architecture']!r} in its metadata (known: "
                           f"{', '.join(ARCHITECTURES)})")
    for k in ("class_names", "bands"):
        if not (isinstance(meta[k], list) and meta[k] and all(isinstance(x, str) for x in meta[k])):
            raise WeightsError(f"{path}: metadata {k!r} must be a non-empty list of names")
    for k in ("norm_mean", "norm_std"):
        v = meta[k]
        if not (isinstance(v, list) and len(v) == len(meta["bands"]) and all(isinstance(x, (int, float)) for x in v)):
            raise WeightsError(f"{path}: metadata {k!r} must give one number per band")
    try:
        recipe_for(WeightsMetadata.from_dict(meta))
    except WeightsError as exc:
        raise WeightsError(f"{path}: {exc}", fix="") from None  # its message already says what to do


def load_weights(path: str | Path | None = None) -> tuple[nn.Module, WeightsMetadata]:
    """Load a weights file (None: :func:`default_weights_path`) into an fp32 model in eval mode,
    with its metadata. No network."""
    path = default_weights_path() if path is None else Path(path)
    return model_from_blob(read_weights_blob(path), path)


def load_metadata(path: str | Path | None = None) -> WeightsMetadata:
    """The checked metadata of a weights file (None: :func:`default_weights_path`), no model built."""
    return WeightsMetadata.from_dict(read_weights_blob(default_weights_path() if path is None else path)["metadata"])


def load_dense_weights(path: str | Path | None = None) -> tuple[nn.Module, WeightsMetadata, nn.Conv2d | None]:
    """A dense weights file (None: :data:`SHIPPED_DENSE`), checked as :func:`load_weights`: the ResNet,
    its metadata and, when the file holds one (keys ``dense_head.*``), the position-aware head."""
    path = SHIPPED_DENSE if path is None else Path(path)
    blob = read_weights_blob(path)
    state = blob["state_dict"]
    head_state = {k[len(DENSE_HEAD_PREFIX):]: v.float() for k, v in state.items() if k.startswith(DENSE_HEAD_PREFIX)}
    model, meta = model_from_blob({"metadata": blob["metadata"],
                                   "state_dict": {k: v for k, v in state.items() if not k.startswith(DENSE_HEAD_PREFIX)}},
                                  path)
    return model, meta, _dense_head(head_state, model, len(meta.class_names), path)


def _dense_head(state: dict[str, torch.Tensor], model: nn.Module, classes: int,
                path: str | Path) -> nn.Conv2d | None:
    """The position-aware head (a convolution from the trunk's features to the classes), None without one."""
    if not state:
        return None
    w = state.get("weight")
    if w is None or w.ndim != 4 or w.shape[0] != classes or w.shape[1] != model.fc.in_features:
        raise WeightsError(f"{path}: its dense head ({DENSE_HEAD_PREFIX}*) is not a convolution from the "
                           f"{model.fc.in_features} features to the {classes} classes")
    head = nn.Conv2d(w.shape[1], w.shape[0], tuple(w.shape[2:]))
    try:
        head.load_state_dict(state)
    except RuntimeError as exc:
        first = next((line.strip() for line in str(exc).splitlines()[1:] if line.strip()), "")
        raise WeightsError(f"{path}: its dense head ({DENSE_HEAD_PREFIX}*) can't be loaded ({first[:160]})") from None
    return head.eval()


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
                           f"({first[:160]}); the file was edited or belongs to another model") from None
    return model.eval(), meta
