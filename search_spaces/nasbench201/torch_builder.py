"""Build a NAS-Bench-201 network as a torch ``nn.Module`` whose structure matches :func:`build_ir` exactly.

Leaf modules are plain ``torch.nn`` layers plus :class:`nas_latency.frontends.torch_modules.Zero` for the
``none`` op; module paths equal the IR layer names (``cells.3.edge_1_2.conv``). ``forward`` has no
data-dependent control flow (loops run over the fixed cell structure), so ``torch.fx`` traces it into the
same DAG as the IR: node sums are binary ``+`` in edge order, the reduction block returns
``shortcut + main``.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Sequence

import torch
from torch import nn

from nas_latency.errors import InvalidInputError
from nas_latency.frontends.torch_modules import Zero
from search_spaces.nasbench201.codec import EDGES, OPS, parse_arch
from search_spaces.nasbench201.macro import (
    BLOCKS,
    DEFAULT_NUM_CLASSES,
    FINAL_CHANNELS,
    INPUT_CHANNELS,
    STEM_CHANNELS,
    check_positive,
)


def _relu_conv_bn(c_in: int, c_out: int, kernel: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        OrderedDict(
            relu=nn.ReLU(inplace=False),
            conv=nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=(kernel - 1) // 2, bias=False),
            bn=nn.BatchNorm2d(c_out, affine=True),
        )
    )


def edge_module(op: str, channels: int) -> nn.Module:
    """The module of one cell edge (stride 1, channels unchanged)."""
    if op == "none":
        return Zero()
    if op == "skip_connect":
        return nn.Identity()
    if op == "nor_conv_1x1":
        return _relu_conv_bn(channels, channels, 1, 1)
    if op == "nor_conv_3x3":
        return _relu_conv_bn(channels, channels, 3, 1)
    if op == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    raise InvalidInputError(f"unknown NAS-Bench-201 operation {op!r}; known operations: {', '.join(OPS)}")


class Cell(nn.Module):
    """A searched cell; edge ``i→j`` is the submodule ``edge_i_j``."""

    def __init__(self, ops: Sequence[str], channels: int) -> None:
        super().__init__()
        self.ops = tuple(ops)
        for (source, target), op in zip(EDGES, ops):
            self.add_module(f"edge_{source}_{target}", edge_module(op, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for target in (1, 2, 3):
            terms = [getattr(self, f"edge_{source}_{target}")(nodes[source]) for source in range(target)]
            acc = terms[0]
            for term in terms[1:]:
                acc = acc + term
            nodes.append(acc)
        return nodes[3]


class ReductionBlock(nn.Module):
    """Residual reduction block: ``downsample(x) + conv_b(conv_a(x))`` with stride 2."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv_a = _relu_conv_bn(c_in, c_out, 3, 2)
        self.conv_b = _relu_conv_bn(c_out, c_out, 3, 1)
        self.downsample = nn.Sequential(
            OrderedDict(
                pool=nn.AvgPool2d(2, stride=2, padding=0),
                conv=nn.Conv2d(c_in, c_out, 1, stride=1, padding=0, bias=False),
            )
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        main = self.conv_b(self.conv_a(x))
        return self.downsample(x) + main


class NasBench201Network(nn.Module):
    """NAS-Bench-201's CIFAR ``TinyNetwork`` (C=16, N=5) for one cell; ``forward`` returns the logits."""

    def __init__(self, ops: Sequence[str], num_classes: int = DEFAULT_NUM_CLASSES) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            OrderedDict(
                conv=nn.Conv2d(INPUT_CHANNELS, STEM_CHANNELS, 3, stride=1, padding=1, bias=False),
                bn=nn.BatchNorm2d(STEM_CHANNELS, affine=True),
            )
        )
        self.cells = nn.ModuleList(
            ReductionBlock(block.in_channels, block.out_channels)
            if block.kind == "reduction"
            else Cell(ops, block.out_channels)
            for block in BLOCKS
        )
        self.lastact = nn.Sequential(
            OrderedDict(bn=nn.BatchNorm2d(FINAL_CHANNELS, affine=True), relu=nn.ReLU(inplace=False))
        )
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten(1)
        self.classifier = nn.Linear(FINAL_CHANNELS, num_classes, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for cell in self.cells:
            x = cell(x)
        x = self.lastact(x)
        x = self.global_pooling(x)
        x = self.flatten(x)
        return self.classifier(x)


def build_torch(arch: str, *, num_classes: int = DEFAULT_NUM_CLASSES, seed: int = 0) -> NasBench201Network:
    """The torch module of ``arch``, in eval mode, with weights initialized deterministically from ``seed``
    (the caller's global RNG state is left untouched)."""
    ops = parse_arch(arch)
    check_positive(num_classes, "num_classes")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        module = NasBench201Network(ops, num_classes)
    return module.eval()
