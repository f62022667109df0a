"""Measuring real latency on this machine, and building the runnable torch modules that get measured.

:func:`build_torch_module` (in :mod:`nas_latency.bench.ir_to_torch`) turns any IR network into a torch module.
It is loaded lazily so that importing this package does not import torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from nas_latency.bench.ir_to_torch import IRModule, build_torch_module

__all__ = ["IRModule", "build_torch_module"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from nas_latency.bench import ir_to_torch

        return getattr(ir_to_torch, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
