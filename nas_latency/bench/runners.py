"""Runtimes that execute an IR network on this machine, each turning a network into a :class:`Sampler`.

=================  ==========================================================================================
``torch``          torch eager on the CPU: :func:`~nas_latency.bench.ir_to_torch.build_torch_module`, eval mode,
                   ``torch.inference_mode()``, timed with ``time.perf_counter`` around ``number`` calls
``onnxruntime``    the same module exported to ONNX (:func:`~nas_latency.frontends.export_onnx`, batch norm kept
                   as a node so that the runtime's own graph optimizer decides what to fuse), run by an
                   onnxruntime ``InferenceSession`` on the CPU provider with ``intra_op_num_threads=threads``,
                   sequential execution, all graph optimizations
``cuda``           torch eager on the GPU, timed with CUDA events around ``number`` calls (needs
                   ``torch.cuda.is_available()``; written for a GPU machine and **untested here**, where there is
                   no GPU)
=================  ==========================================================================================

The thread count itself is applied by :func:`~nas_latency.bench.protocol.execution_context` (torch) or by the
session options (onnxruntime); runners only record it. Inputs are random tensors of the network's input shapes
(batch included), drawn from a fixed seed.

CPU samplers report both the wall time and the CPU time of the measuring thread (``time.thread_time``): with one
thread, CPU time leaves out the time the thread waited while another process ran, which on a shared machine is
what inflates whole-network measurements (see :mod:`nas_latency.bench.protocol`).

``sampler(network, copies=K)`` runs K copies of the network (each with its own weights in its own memory) in
turn, so that the weights cycled through exceed the caches: a *cold-weight* measurement, as a layer runs inside a
large network whose other layers evict its weights between two inferences (see
:func:`~nas_latency.bench.memory_items.cold_kernel_items`).
"""

from __future__ import annotations

import functools
import io
import time
from dataclasses import dataclass
from typing import Any, Callable, Literal

from nas_latency.bench.protocol import Sampler
from nas_latency.errors import FailedPreconditionError, InvalidInputError
from nas_latency.ir import Network

RuntimeName = Literal["torch", "onnxruntime", "cuda"]
RUNTIMES: tuple[RuntimeName, ...] = ("torch", "onnxruntime", "cuda")


def _inputs(network: Network, *, device: str = "cpu", seed: int = 0) -> tuple[Any, ...]:
    import torch

    generator = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(spec.shape, generator=generator).to(device) for spec in network.inputs)


def _rotating(calls: list[Callable[[], Any]]) -> Callable[[], Any]:
    """One callable running ``calls`` in turn (just the first when there is one)."""
    if len(calls) == 1:
        return calls[0]
    state = {"i": 0}
    count = len(calls)

    def run() -> Any:
        i = state["i"]
        state["i"] = i + 1 if i + 1 < count else 0
        return calls[i]()

    return run


def _check_copies(copies: int) -> int:
    if isinstance(copies, bool) or not isinstance(copies, int) or copies < 1:
        raise InvalidInputError(f"copies must be a positive integer, got {copies!r}")
    return copies


class _CpuLoop:
    """``number`` calls of ``fn``; returns ``(wall seconds, CPU seconds of this thread)``."""

    def __init__(self, fn: Callable[[], Any], context: Callable[[], Any] | None = None) -> None:
        self._fn = fn
        self._context = context

    def _loop(self, number: int) -> tuple[float, float]:
        fn = self._fn
        start = time.perf_counter()  # the CPU interval nests inside the wall one, so CPU time never exceeds it
        cpu_start = time.thread_time()
        for _ in range(number):
            fn()
        cpu = time.thread_time() - cpu_start
        return time.perf_counter() - start, cpu

    def __call__(self, number: int) -> tuple[float, float]:
        if self._context is not None:
            with self._context():
                return self._loop(number)
        return self._loop(number)


@dataclass(frozen=True)
class TorchEagerRunner:
    """torch eager, CPU."""

    threads: int = 1
    name: RuntimeName = "torch"

    def sampler(self, network: Network, *, copies: int = 1) -> Sampler:
        import copy

        import torch

        from nas_latency.bench.ir_to_torch import build_torch_module

        module = build_torch_module(network)
        modules = [module] + [copy.deepcopy(module) for _ in range(_check_copies(copies) - 1)]
        inputs = _inputs(network)
        return _CpuLoop(_rotating([functools.partial(m, *inputs) for m in modules]), torch.inference_mode)

    def info(self) -> dict[str, Any]:
        return {"runtime": self.name, "threads": self.threads, "mode": "eager, inference_mode, float32"}


@dataclass(frozen=True)
class OnnxRuntimeRunner:
    """onnxruntime, CPU execution provider."""

    threads: int = 1
    optimization: Literal["all", "basic", "none"] = "all"
    name: RuntimeName = "onnxruntime"

    def _sessions(self, network: Network, copies: int) -> list[Any]:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise FailedPreconditionError(
                f"the onnxruntime runtime needs the onnxruntime package ({exc}); `pip install onnxruntime`"
            ) from None
        from nas_latency.bench.ir_to_torch import build_torch_module
        from nas_latency.frontends import export_onnx

        module = build_torch_module(network)
        buffer = io.BytesIO()
        export_onnx(module, _inputs(network), buffer)
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = {
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
            "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            "none": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        }[self.optimization]
        options.log_severity_level = 3
        model = buffer.getvalue()
        return [ort.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])
                for _ in range(copies)]

    #: sessions are expensive to create: at most this many copies
    max_copies: int = 8

    def sampler(self, network: Network, *, copies: int = 1) -> Sampler:
        sessions = self._sessions(network, min(_check_copies(copies), self.max_copies))
        names = [i.name for i in sessions[0].get_inputs()]
        feeds = {name: tensor.numpy() for name, tensor in zip(names, _inputs(network))}
        if len(feeds) != len(names):
            raise InvalidInputError(f"network {network.name!r}: the ONNX model takes {len(names)} inputs")
        return _CpuLoop(_rotating([functools.partial(s.run, None, feeds) for s in sessions]))

    def info(self) -> dict[str, Any]:
        return {"runtime": self.name, "threads": self.threads, "graph_optimization": self.optimization,
                "provider": "CPUExecutionProvider"}


class _CudaEventLoop:
    """``number`` calls between two CUDA events; returns seconds (event time is in ms). Untested here (no GPU)."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        import torch

        self._fn = fn
        self._torch = torch
        self._start = torch.cuda.Event(enable_timing=True)
        self._end = torch.cuda.Event(enable_timing=True)

    def __call__(self, number: int) -> float:
        torch = self._torch
        with torch.inference_mode():
            torch.cuda.synchronize()
            self._start.record()
            for _ in range(number):
                self._fn()
            self._end.record()
            self._end.synchronize()
        return float(self._start.elapsed_time(self._end)) / 1e3


@dataclass(frozen=True)
class CudaEventsRunner:
    """torch eager on the GPU, timed with CUDA events (guarded by ``torch.cuda.is_available()``)."""

    threads: int = 1
    name: RuntimeName = "cuda"

    def sampler(self, network: Network, *, copies: int = 1) -> Sampler:
        import copy

        import torch

        from nas_latency.bench.ir_to_torch import build_torch_module

        if not torch.cuda.is_available():
            raise FailedPreconditionError("the cuda runtime needs a GPU: torch.cuda.is_available() is False here")
        module = build_torch_module(network).cuda()
        modules = [module] + [copy.deepcopy(module) for _ in range(_check_copies(copies) - 1)]
        inputs = _inputs(network, device="cuda")
        return _CudaEventLoop(_rotating([functools.partial(m, *inputs) for m in modules]))

    def info(self) -> dict[str, Any]:
        info: dict[str, Any] = {"runtime": self.name, "threads": self.threads, "timer": "cuda events"}
        try:
            import torch

            if torch.cuda.is_available():
                info["gpu"] = torch.cuda.get_device_name(0)
                info["cuda"] = torch.version.cuda
        except Exception:  # pragma: no cover - informational only
            pass
        return info


Runner = TorchEagerRunner | OnnxRuntimeRunner | CudaEventsRunner


def make_runner(name: str, *, threads: int = 1) -> Runner:
    """The runner called ``name`` (one of :data:`RUNTIMES`)."""
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise InvalidInputError(f"threads must be a positive integer, got {threads!r}")
    if name == "torch":
        return TorchEagerRunner(threads=threads)
    if name == "onnxruntime":
        return OnnxRuntimeRunner(threads=threads)
    if name == "cuda":
        import torch

        if not torch.cuda.is_available():  # refused before anything is measured, not once per network
            raise FailedPreconditionError("the cuda runtime needs a GPU: torch.cuda.is_available() is False here")
        return CudaEventsRunner(threads=threads)
    raise InvalidInputError(f"unknown runtime {name!r}; known runtimes: {', '.join(RUNTIMES)}")
