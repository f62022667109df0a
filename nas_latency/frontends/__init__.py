"""Frontends: torch modules, ONNX models and layer tables to the network IR.

``torch_to_ir`` and ``export_onnx`` need torch, ``onnx_to_ir`` needs onnx; they are imported on first use, so
``import nas_latency.frontends`` stays cheap.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nas_latency.errors import InvalidInputError
from nas_latency.frontends.conversion import Conversion, OnUnsupported, SkippedNode, check_on_unsupported

if TYPE_CHECKING:
    from nas_latency.frontends.onnx_export import export_onnx
    from nas_latency.frontends.onnx_frontend import onnx_to_ir
    from nas_latency.frontends.torch_fx import torch_to_ir

_LAZY = {
    "torch_to_ir": "nas_latency.frontends.torch_fx",
    "onnx_to_ir": "nas_latency.frontends.onnx_frontend",
    "export_onnx": "nas_latency.frontends.onnx_export",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def load_network_file(
    path: str | Path, *, on_unsupported: OnUnsupported = "error", batch_size: int | None = None
) -> Conversion:
    """Read a network from a file: ``.onnx`` through :func:`onnx_to_ir` (``batch_size`` fixes a symbolic batch
    dimension), ``.json`` as a layer table (:func:`nas_latency.ir.load_network_json`, always exact)."""
    check_on_unsupported(on_unsupported)
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        from nas_latency.frontends.onnx_frontend import onnx_to_ir

        return onnx_to_ir(path, on_unsupported=on_unsupported, batch_size=batch_size)
    if suffix == ".json":
        from nas_latency.ir import load_network_json

        try:
            return Conversion(load_network_json(path))
        except UnicodeDecodeError:  # load_network_json reads text: a binary file is not a layer table
            raise InvalidInputError(f"{path}: not a layer table (the file is not UTF-8 text)") from None
    raise InvalidInputError(f"{path}: unknown network file type {suffix or '(none)'!r}; expected .onnx or .json")


__all__ = [
    "Conversion",
    "OnUnsupported",
    "SkippedNode",
    "export_onnx",
    "load_network_file",
    "onnx_to_ir",
    "torch_to_ir",
]
