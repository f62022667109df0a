"""Fixtures shared by tests in more than one folder."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import pytest


@pytest.fixture
def conv_onnx_model() -> Callable[..., Any]:
    """A factory of small ONNX models (opset 17): a 3x3 convolution (3 -> 16 channels on a 1x3x32x32 input,
    weights as an initializer, 16·32·32·3·3·3 MACs), then one unary node ``op_type`` named
    ``node_name``."""
    import onnx

    def make(op_type: str, node_name: str) -> Any:
        helper = onnx.helper
        weights = onnx.numpy_helper.from_array(np.zeros((16, 3, 3, 3), dtype=np.float32), name="w")
        graph = helper.make_graph(
            [helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node(op_type, ["c"], ["y"], name=node_name)], f"conv_{node_name}",
            [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 3, 32, 32])],
            [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 16, 32, 32])], initializer=[weights],
        )
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])

    return make
