"""Torch modules to ONNX, with the settings that keep the graph as close to the module as torch's legacy exporter
can (see :func:`export_onnx`); :func:`~nas_latency.frontends.onnx_frontend.onnx_to_ir` reads the result back."""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import IO, TYPE_CHECKING, Sequence

from nas_latency.errors import InvalidInputError, UnsupportedOperatorError

if TYPE_CHECKING:
    import torch


_EXPORT_NOISE = (
    r".*legacy TorchScript-based ONNX export.*",
    r".*The feature will be removed.*",
    r".*recommended that constant folding be turned off.*",
    r".*Only steps=1 can be constant folded.*",  # the reversed pads torch computes for F.pad
)


def export_onnx(
    module: "torch.nn.Module",
    example_input: "torch.Tensor | Sequence[torch.Tensor]",
    path_or_buffer: str | Path | IO[bytes],
    *,
    opset_version: int | None = None,
) -> None:
    """Export ``module`` (run on ``example_input``) to ONNX with the legacy TorchScript exporter
    (``torch.onnx.export(..., dynamo=False)``), keeping the graph as close to the module as that exporter can.

    What the exporter does (torch 2.13, default opset 20), and the settings chosen here:

    * ``training=TrainingMode.EVAL`` (its default) folds every BatchNorm into the preceding convolution (the conv
      gains a bias), ``affine=False`` ones included, so the ONNX graph has no BatchNormalization at all. This
      function exports with ``training=TrainingMode.PRESERVE`` with the module switched to eval mode (its flags are
      restored afterwards): BatchNorm stays a ``BatchNormalization`` node (``training_mode=0``) and dropout is
      removed, as in inference.
    * ``do_constant_folding=True`` (kept): with ``False`` every shape computation (``x.shape`` in a
      ``ChannelShuffle``, ``x.view(x.size(0), -1)``) stays a subgraph of Constant/Unsqueeze/Concat nodes; with
      ``True`` they become ``Constant`` targets. Folding does not fuse BatchNorm in PRESERVE mode. (torch warns that
      constant folding is not recommended in PRESERVE mode; that warning concerns training-mode export and is
      silenced here, as is the deprecation notice of the legacy exporter.)
    * ``nn.Identity`` never appears in the ONNX graph (tracing records no operation for it), in any mode; eval-mode
      dropout disappears too. The IR from ONNX therefore has no IDENTITY layers where the module has them.
    * Identical pure operations on the same input (two ``nn.ReLU`` on one tensor, two ``x * 0``) are merged by the
      TorchScript common-subexpression pass, in every mode; no ``export`` argument turns it off.
    * Equal-valued initializers are deduplicated: a fresh BatchNorm's ``weight`` (ones) and ``running_var`` (ones)
      become one initializer and ``Identity`` nodes on it. ``affine=False`` BatchNorm gets literal ``Constant``
      ones and zeros as scale and bias.
    * Other spellings: ``nn.SiLU`` → ``Sigmoid`` + ``Mul``; ``nn.ReLU6`` → ``Clip(0, 6)``; ``AdaptiveAvgPool2d(1)``
      → ``GlobalAveragePool``, ``AdaptiveAvgPool2d(k)`` (even windows) → ``AveragePool``; ``AdaptiveMaxPool2d(1)``
      → ``MaxPool`` with a kernel the size of the input; ``nn.Linear`` → ``Gemm`` on 2-D inputs, ``MatMul`` +
      ``Add`` otherwise; ``nn.GELU`` → ``Gelu``; the project's ``ChannelShuffle`` → Reshape/Transpose/Reshape;
      ``nn.ChannelShuffle`` (``aten::channel_shuffle``) cannot be exported; ``F.pad``/``nn.*Pad2d`` → ``Pad``
      (circular: Slice/Concat per dimension), ``Conv2d(padding_mode="reflect")`` → ``Pad`` + ``Conv`` with no pads.

    So compare ONNX-frontend IR with other IR after :func:`nas_latency.ir.canonicalize` (no identities, duplicate
    pure operations merged). Export failures raise :class:`~nas_latency.errors.InvalidInputError` (or
    :class:`~nas_latency.errors.UnsupportedOperatorError` for an operator the exporter does not support).
    """
    import torch

    inputs = (example_input,) if isinstance(example_input, torch.Tensor) else tuple(example_input)
    if not inputs or not all(isinstance(t, torch.Tensor) for t in inputs):
        raise InvalidInputError("example_input must be a tensor or a non-empty tuple of tensors")
    flags = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        with warnings.catch_warnings():
            for pattern in _EXPORT_NOISE:
                warnings.filterwarnings("ignore", message=pattern)
            torch.onnx.export(
                module, inputs, path_or_buffer, dynamo=False, training=torch.onnx.TrainingMode.PRESERVE,
                do_constant_folding=True, opset_version=opset_version,
            )
    except torch.onnx.errors.UnsupportedOperatorError as exc:
        match = re.search(r"operator '([^']+)'", str(exc))
        op = match.group(1) if match else "unknown"
        raise UnsupportedOperatorError(f"cannot export to ONNX: {exc}", node=op, operator=op) from exc
    except Exception as exc:
        raise InvalidInputError(f"cannot export {type(module).__name__} to ONNX: {type(exc).__name__}: {exc}") from exc
    finally:
        for m, flag in flags:
            m.training = flag
