"""torchvision ResNets adapted to 64x64 Sentinel-2 patches.

Stems:
- ``imagenet``: the torchvision stem (7x7/2 conv + 3x3/2 max-pool); a 64 px patch reaches
  layer1 at 16x16 and the last stage at 2x2.
- ``s2``: 7x7/2 conv without the max-pool; layer1 runs at 32x32, the last stage at 4x4. About
  4x the FLOPs of ``imagenet`` and clearly more accurate on 64 px EuroSAT patches.

The networks are torchvision's ResNets, module for module (same state-dict keys, same
initialisation), defined here so that running the app does not import torchvision (about
170 MB of resident memory); torchvision is imported only for ImageNet weights.
"""

from __future__ import annotations

import torch
from torch import nn

ARCHITECTURES = ("resnet18", "resnet34", "resnet50")
STEMS = ("imagenet", "s2")


def _conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride, 1, bias=False)


def _conv1x1(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 1, stride, bias=False)


class BasicBlock(nn.Module):
    """torchvision's ResNet basic block (ResNet-18 / 34)."""

    expansion = 1

    def __init__(self, cin: int, width: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = _conv3x3(cin, width, stride)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(width, width)
        self.bn2 = nn.BatchNorm2d(width)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + identity)


class Bottleneck(nn.Module):
    """torchvision's ResNet bottleneck block (ResNet-50; stride on the 3x3 convolution)."""

    expansion = 4

    def __init__(self, cin: int, width: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = _conv1x1(cin, width)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = _conv3x3(width, width, stride)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = _conv1x1(width, width * 4)
        self.bn3 = nn.BatchNorm2d(width * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + identity)


_LAYOUT = {"resnet18": (BasicBlock, (2, 2, 2, 2)), "resnet34": (BasicBlock, (3, 4, 6, 3)),
           "resnet50": (Bottleneck, (3, 4, 6, 3))}


class ResNet(nn.Module):
    """torchvision's ResNet (v1.5), with its module names and initialisation."""

    def __init__(self, block: type, layers: tuple[int, ...], num_classes: int = 1000) -> None:
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool: nn.Module = nn.MaxPool2d(3, 2, 1)
        self.layer1 = self._layer(block, 64, layers[0])
        self.layer2 = self._layer(block, 128, layers[1], 2)
        self.layer3 = self._layer(block, 256, layers[2], 2)
        self.layer4 = self._layer(block, 512, layers[3], 2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * block.expansion, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    def _layer(self, block: type, width: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != width * block.expansion:
            downsample = nn.Sequential(_conv1x1(self.inplanes, width * block.expansion, stride),
                                       nn.BatchNorm2d(width * block.expansion))
        layers = [block(self.inplanes, width, stride, downsample)]
        self.inplanes = width * block.expansion
        layers += [block(self.inplanes, width) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def build_resnet(arch: str = "resnet18", stem: str = "s2", num_classes: int = 10,
                 in_channels: int = 3, pretrained: str | None = None) -> nn.Module:
    """Build a ResNet for (N, in_channels, 64, 64) inputs.

    ``pretrained="imagenet"`` loads torchvision's ImageNet weights (needs internet or a
    populated torch hub cache); the classifier head is replaced either way.
    """
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; choose from {ARCHITECTURES}")
    if stem not in STEMS:
        raise ValueError(f"unknown stem {stem!r}; choose from {STEMS}")
    if pretrained not in (None, "none", "imagenet"):
        raise ValueError(f"unknown pretrained weights {pretrained!r}; use 'imagenet' or none")
    block, layers = _LAYOUT[arch]
    model = ResNet(block, layers)
    if pretrained == "imagenet":
        import torchvision

        weights = torchvision.models.get_model_weights(arch).DEFAULT
        model.load_state_dict(weights.get_state_dict(progress=False))
    if in_channels != 3:
        old = model.conv1
        model.conv1 = nn.Conv2d(in_channels, old.out_channels, old.kernel_size, old.stride,
                                old.padding, bias=False)
    if stem == "s2":
        model.maxpool = nn.Identity()
    model.fc = nn.Linear(model.fc.in_features, num_classes)
    return model


def count_flops(model: nn.Module, in_channels: int = 3, size: int = 64) -> int:
    """Multiply-accumulate based FLOPs (2 x MACs) of one forward pass on one patch."""
    from torch.utils.flop_counter import FlopCounterMode

    model = model.eval()
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, in_channels, size, size))
    return int(counter.get_total_flops())
