"""Measuring real latency on this machine, and building the runnable torch modules that get measured.

:func:`build_torch_module` (in :mod:`nas_latency.bench.ir_to_torch`) turns any IR network into a torch module.
It is loaded lazily so that importing this package does not import torch.

=====================  ========================================================================================
``protocol``           warm-up, repetitions until the median is stable or a cap, outlier rejection, wall/CPU
                       timers, rounds, threads and pinning, the environment record
``runners``            torch eager, onnxruntime (CPU) and CUDA events, each turning a network into a sampler
``items``              what one measurement is (:class:`~nas_latency.bench.items.BenchItem`), a layer as a network
``kernel_items``       micro-kernels: grid, random, space prior, adaptive
``block_items``        multi-layer blocks (with their layers as kernels) and whole networks of a NAS space
``memory_items``       cold-weight twins of kernels, footprint and context chains
``calibration``        chains of tiny ReLUs, and the runtime's fixed cost per call they give
``classic``            ResNet-18, MobileNetV2 and VGG as IR, for evaluation
``sweep``              measure a list of items in interleaved rounds; store rows
``device``             ``bench device``: onboard this machine and fit its layer models
``evaluation``         ``bench evaluate``: whole networks never used for fitting, metrics next to the noise
=====================  ========================================================================================
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
