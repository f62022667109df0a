"""Small torch modules for operators torch has no module for. The torch frontend treats them as leaves and
maps them to their IR op kind, so networks built with them convert exactly."""

from __future__ import annotations

import torch
from torch import nn


class Zero(nn.Module):
    """Outputs zeros shaped like the input, computed as ``x * 0`` (as NAS-Bench-201's ``none`` op is)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


class ChannelShuffle(nn.Module):
    """ShuffleNet channel shuffle: ``(N, g, C/g, H, W)`` transposed to ``(N, C/g, g, H, W)``."""

    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        x = x.reshape(n, self.groups, c // self.groups, h, w)
        return x.transpose(1, 2).reshape(n, c, h, w)

    def extra_repr(self) -> str:
        return f"groups={self.groups}"
