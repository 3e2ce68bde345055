"""Shipped weights and their metadata (the model's documented input contract).

A weights file is a ``torch.save`` dict ``{"metadata": {...}, "state_dict": {...}}`` readable
with ``weights_only=True``. The metadata states everything needed to feed the model correctly:
architecture, class names in output order, input bands in channel order, the value recipe,
normalisation, and calibration temperatures.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lulc_core.model.architectures import build_resnet

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
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


def load_weights(path: Path = DEFAULT_WEIGHTS) -> tuple[nn.Module, WeightsMetadata]:
    """Load a weights file into an fp32 model in eval mode, with its metadata. No network."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"weights file {path} not found")
    return model_from_blob(torch.load(path, map_location="cpu", weights_only=True))


def model_from_blob(blob: dict[str, Any]) -> tuple[nn.Module, WeightsMetadata]:
    """The fp32 model (eval mode) and metadata of a loaded weights dict."""
    meta = WeightsMetadata.from_dict(blob["metadata"])
    model = build_resnet(meta.architecture, meta.stem, num_classes=len(meta.class_names),
                         in_channels=len(meta.bands))
    model.load_state_dict({k: v.float() if v.is_floating_point() else v
                           for k, v in blob["state_dict"].items()})
    return model.eval(), meta
