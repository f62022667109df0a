"""Build an FBNet network as a torch ``nn.Module`` whose structure matches :func:`build_ir` exactly.

Leaf modules are ``nn.Conv2d``, ``nn.BatchNorm2d``, ``nn.ReLU`` (not in place),
:class:`~nas_latency.frontends.torch_modules.ChannelShuffle`, ``nn.Identity``, ``nn.AdaptiveAvgPool2d(1)``,
``nn.Flatten`` and ``nn.Linear``; module paths equal the IR layer names. The residual add is an explicit
``out + x`` and ``forward`` has no data-dependent control flow, so ``torch.fx`` traces the same DAG as the IR.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from nas_latency.errors import InvalidInputError
from nas_latency.frontends.torch_modules import ChannelShuffle
from search_spaces.fbnet.codec import BLOCK_SPECS, BLOCKS, parse_arch
from search_spaces.fbnet.macro import (
    FINAL_CHANNELS,
    HEAD_CHANNELS,
    INPUT_CHANNELS,
    NUM_CLASSES,
    SLOTS,
    STEM_CHANNELS,
    LayerSlot,
)


def conv_bn_relu(c_in: int, c_out: int, kernel: int, stride: int) -> nn.Sequential:
    """HW-NAS-Bench's ``ConvNorm``: Conv k×k (pad (k−1)/2, no bias) → BN → ReLU."""
    return nn.Sequential(
        OrderedDict(
            conv=nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=(kernel - 1) // 2, bias=False),
            bn=nn.BatchNorm2d(c_out, affine=True),
            relu=nn.ReLU(inplace=False),
        )
    )


class InvertedResidual(nn.Module):
    """Block ``k{K}_e{E}`` (``_g2``: grouped 1×1 convs and a channel shuffle), as HW-NAS-Bench's ``ConvBlock``."""

    def __init__(self, c_in: int, c_out: int, kernel: int, expansion: int, stride: int, groups: int) -> None:
        super().__init__()
        mid = c_in * expansion
        self.conv1 = nn.Conv2d(c_in, mid, 1, groups=groups, bias=False)
        self.bn1 = nn.BatchNorm2d(mid, affine=True)
        self.relu1 = nn.ReLU(inplace=False)
        self.shuffle = ChannelShuffle(groups) if groups > 1 else None
        self.conv2 = nn.Conv2d(mid, mid, kernel, stride=stride, padding=(kernel - 1) // 2, groups=mid, bias=False)
        self.bn2 = nn.BatchNorm2d(mid, affine=True)
        self.relu2 = nn.ReLU(inplace=False)
        self.conv3 = nn.Conv2d(mid, c_out, 1, groups=groups, bias=False)
        self.bn3 = nn.BatchNorm2d(c_out, affine=True)
        self.residual = c_in == c_out and stride == 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu1(self.bn1(self.conv1(x)))
        if self.shuffle is not None:
            out = self.shuffle(out)
        out = self.relu2(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.residual:
            out = out + x
        return out


def block_module(block: str, slot: LayerSlot) -> nn.Module:
    """The module of one searchable layer."""
    if block == "skip":
        if slot.has_residual:
            return nn.Identity()
        return conv_bn_relu(slot.in_channels, slot.out_channels, 1, slot.stride)
    spec = BLOCK_SPECS.get(block)
    if spec is None:
        raise InvalidInputError(f"{slot.prefix}: unknown block {block!r}; known blocks: {', '.join(BLOCKS)}")
    return InvertedResidual(slot.in_channels, slot.out_channels, spec.kernel, spec.expansion, slot.stride, spec.groups)


class FBNetNetwork(nn.Module):
    """The CIFAR-100 FBNet network of one architecture; ``forward`` returns the logits ``(N, 100)``."""

    def __init__(self, blocks: tuple[str, ...], num_classes: int = NUM_CLASSES) -> None:
        super().__init__()
        self.blocks = blocks
        self.stem = conv_bn_relu(INPUT_CHANNELS, STEM_CHANNELS, 3, 1)
        self.layers = nn.ModuleList(block_module(block, slot) for slot, block in zip(SLOTS, blocks))
        self.header = conv_bn_relu(FINAL_CHANNELS, HEAD_CHANNELS, 1, 1)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten(1)
        self.fc = nn.Linear(HEAD_CHANNELS, num_classes, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for layer in self.layers:
            x = layer(x)
        x = self.header(x)
        x = self.avgpool(x)
        x = self.flatten(x)
        return self.fc(x)


def build_torch(arch: str, *, seed: int = 0) -> FBNetNetwork:
    """The network of ``arch`` in eval mode, weights initialized from ``seed`` (global RNG state untouched)."""
    blocks = parse_arch(arch)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = FBNetNetwork(blocks)
    return model.eval()
