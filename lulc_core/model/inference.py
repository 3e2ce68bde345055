"""Inference building blocks shared by the classifier, the dense path and training.

- :func:`fold_batchnorm`: a copy of a network with every batch norm folded into the convolution
  before it (eval-mode statistics), so inference runs one fused convolution instead of two ops.
- :func:`predict_logits`: the one implementation of "normalise uint8 recipe images, run the
  network, average the 8 dihedral views when asked" used by training, evaluation and the
  :class:`~lulc_core.model.classifier.Classifier`.

- :func:`inference_network`: the network as the app runs it: folded, channels-last and, when
  :data:`INFERENCE_BF16`, with bfloat16 weights and activations.
- :func:`exclusive_threads`: one inference at a time per model, with torch's threads pinned while
  it runs (both classifiers).

Precision (measured on this machine's 2 AMD EPYC cores with AVX512-BF16, batch 256, 64 px):
fp32 unfolded 236 patches/s, fp32 folded 272-310, bf16 autocast on the folded network 347,
**bf16 weights on the folded network 661**; the dense path on an 896 px tile 1.96 s unfolded,
0.55-0.61 s folded fp32, 0.27 s folded bf16. bf16 keeps EuroSAT accuracy (figures in
``lulc_core/data/tta_cascade.json`` and docs/MODEL_CARD.md), so the app runs bf16 weights.
Threads: torch uses one thread per core by default (2 here: 562 patches/s through the API in
bf16 at batch 256, against 313 with 1 thread); the classifiers take ``threads`` to pin it
(``--threads`` on the command line), and ``OMP_NUM_THREADS`` works as usual. Pin 1 thread per
process when several analyses share the cores.
"""

from __future__ import annotations

import copy
import threading
from contextlib import contextmanager
from typing import Iterable, Iterator, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from lulc_core.model.transforms import dihedral, normalise

#: Run inference with bfloat16 weights (see the module docstring for the measurements).
INFERENCE_BF16 = True
#: The 8 dihedral views (identity first); TTA averages the logits over them.
ALL_VIEWS: tuple[int, ...] = tuple(range(8))


def fold_batchnorm(model: nn.Module, inplace: bool = False) -> nn.Module:
    """An eval-mode copy of ``model`` (``model`` itself if ``inplace``) with each ``BatchNorm2d``
    folded into its convolution.

    Folds the pairs a torchvision ResNet has: attributes ``convK`` / ``bnK`` of one module and
    a convolution followed by a batch norm inside an ``nn.Sequential`` (the downsample
    shortcut). Folded batch norms become ``nn.Identity``. Any batch norm left unfolded raises,
    so a new architecture cannot silently keep a slow path.
    """
    fused = (model if inplace else copy.deepcopy(model)).eval()
    for module in list(fused.modules()):
        if isinstance(module, nn.Sequential):
            for i in range(len(module) - 1):
                conv, bn = module[i], module[i + 1]
                if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                    module[i] = fuse_conv_bn_eval(conv, bn)
                    module[i + 1] = nn.Identity()
        for name, child in list(module.named_children()):
            if isinstance(child, nn.BatchNorm2d) and name.startswith("bn"):
                conv = getattr(module, "conv" + name[2:], None)
                if isinstance(conv, nn.Conv2d):
                    setattr(module, "conv" + name[2:], fuse_conv_bn_eval(conv, child))
                    setattr(module, name, nn.Identity())
    left = [n for n, m in fused.named_modules() if isinstance(m, nn.BatchNorm2d)]
    if left:
        raise ValueError(f"batch norm layers without a convolution to fold into: {', '.join(left)}")
    return fused.to(memory_format=torch.channels_last)


def inference_network(model: nn.Module, bf16: bool = INFERENCE_BF16, inplace: bool = False) -> nn.Module:
    """The folded, channels-last copy of ``model`` that inference runs (bf16 weights if asked);
    ``inplace`` turns ``model`` itself into it (no second copy of the weights in memory)."""
    net = fold_batchnorm(model, inplace=inplace)
    return net.to(torch.bfloat16) if bf16 else net


@contextmanager
def exclusive_threads(lock: threading.Lock, threads: int | None) -> Iterator[None]:
    """Hold ``lock`` (one inference at a time on a model) with torch using ``threads`` threads
    (None or 0: as it was), restoring torch's thread count afterwards."""
    with lock:
        prev = torch.get_num_threads()
        if threads:
            torch.set_num_threads(threads)
        try:
            yield
        finally:
            torch.set_num_threads(prev)


def network_dtype(model: nn.Module) -> torch.dtype:
    """The dtype of a network's weights (inputs are cast to it)."""
    return next(model.parameters()).dtype


@torch.inference_mode()
def predict_logits(model: nn.Module, images: torch.Tensor | np.ndarray, mean: Sequence[float],
                   std: Sequence[float], tta: bool = False, batch_size: int = 256,
                   bf16: bool = False, views: Iterable[int] | None = None) -> np.ndarray:
    """Logits (N, classes) of uint8 (N, C, H, W) recipe images.

    ``tta`` averages the logits of the 8 dihedral views (``views`` picks others, e.g. the 7
    non-identity ones when the identity view's logits are already known). Inputs are cast to
    the network's dtype (bf16 networks from :func:`inference_network`); ``bf16=True`` runs an
    fp32 network under bfloat16 autocast instead (training's validation passes).
    """
    if isinstance(images, np.ndarray):
        images = torch.from_numpy(np.ascontiguousarray(images, dtype=np.uint8))
    views = tuple(views) if views is not None else (ALL_VIEWS if tta else (0,))
    dtype = network_dtype(model)
    was_training = model.training
    model.eval()
    out = []
    try:
        for i in range(0, len(images), batch_size):
            x = normalise(images[i:i + batch_size], mean, std).to(dtype).contiguous(memory_format=torch.channels_last)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                z = sum(model(dihedral(x, k)).float() for k in views) / len(views)
            out.append(z)
    finally:
        model.train(was_training)
    if not out:
        return np.zeros((0, model_classes(model)), dtype=np.float32)
    return torch.cat(out).numpy()


def model_classes(model: nn.Module) -> int:
    """Number of classes of a ResNet-style network (its ``fc`` layer)."""
    return int(model.fc.out_features)
