"""Cost-model features of mobile networks: the research's Ganesan network-level features (17 columns) and the
network's IR costs.

Computed from the IR alone, so any mobile network (a Ganesan table, an ONNX or torch model) gets them. Per
layer, *work* is its MACs for convolutions and linear layers and the number of output elements for every
other counted kind (as the Ganesan layer table's ``macs`` column). Layer kinds are counted as the table's op
types: ``conv`` (dense and grouped convolutions, linear), ``dwconv`` (depthwise), ``add`` (elementwise),
``relu`` (activations), ``pool`` (window and global pools); batch norm, concat, shuffles and views are not
counted. Columns, in order:

* ``log1p_{op}_work_m`` and ``{op}_count`` for each op type (10);
* ``log1p_work_m_hw{s}`` for s in 112, 56, 28, 14, 7: work of the layers whose output size lies in
  ``[0.75·s, 1.5·s)`` (5);
* ``log1p_params_m``: log(1 + parameters in millions);
* ``log_macs``: natural log of the whole network's MACs (replaces the research's log of the CSV FLOPs column,
  which only the bundled networks have);
* ``cost.<group>.<quantity>`` (70): the whole network's IR features (:mod:`nas_latency.ir.features`: count, MACs,
  parameters, bytes read and written per op group, and their totals), every one of them, since a network from
  outside the table may hold any op group. A device that runs the layers one after another takes about a
  non-negative price per unit of each (:mod:`nas_latency.models.cost_nnls`, which drops the columns that do not
  vary over its training rows); the transfer models do not see them (``without_costs``).

No intercept and no standardization (the models add and fit them).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from nas_latency.ir import Network, numel
from nas_latency.ir.features import GROUP_OF, IR_FEATURE_NAMES, network_features

OP_TYPES: tuple[str, ...] = ("conv", "dwconv", "add", "relu", "pool")
#: IR feature group -> Ganesan op type (groups not listed are not counted)
_TYPE_OF_GROUP = {
    "conv": "conv",
    "grouped_conv": "conv",
    "linear": "conv",
    "depthwise_conv": "dwconv",
    "elementwise": "add",
    "activation": "relu",
    "pool": "pool",
    "global_pool": "pool",
}
RESOLUTIONS: tuple[int, ...] = (112, 56, 28, 14, 7)

MODEL_FEATURE_NAMES: tuple[str, ...] = (
    tuple(name for op in OP_TYPES for name in (f"log1p_{op}_work_m", f"{op}_count"))
    + tuple(f"log1p_work_m_hw{s}" for s in RESOLUTIONS)
    + ("log1p_params_m", "log_macs")
    + tuple(f"cost.{name}" for name in IR_FEATURE_NAMES)
)
#: how many of the columns are the research's network-level features (the rest are the ``cost.*`` columns)
RESEARCH_FEATURE_COUNT = 17
assert len(MODEL_FEATURE_NAMES) == RESEARCH_FEATURE_COUNT + len(IR_FEATURE_NAMES)


def network_model_features(network: Network) -> np.ndarray:
    """The :data:`MODEL_FEATURE_NAMES` vector of one network."""
    work = dict.fromkeys(OP_TYPES, 0.0)
    count = dict.fromkeys(OP_TYPES, 0)
    by_resolution = np.zeros(len(RESOLUTIONS))
    for layer in network.layers:
        op_type = _TYPE_OF_GROUP.get(GROUP_OF[layer.op])
        if op_type is None:
            continue
        amount = float(layer.macs) if op_type == "conv" or op_type == "dwconv" else float(numel(layer.output_shape))
        work[op_type] += amount
        count[op_type] += 1
        if len(layer.output_shape) == 4:
            size = layer.output_shape[2]
            for i, s in enumerate(RESOLUTIONS):
                if 0.75 * s <= size < 1.5 * s:
                    by_resolution[i] += amount
    values = [v for op in OP_TYPES for v in (np.log1p(work[op] / 1e6), float(count[op]))]
    values += list(np.log1p(by_resolution / 1e6))
    values += [float(np.log1p(network.params / 1e6)), float(np.log(max(network.macs, 1)))]
    return np.concatenate([np.asarray(values, dtype=np.float64), network_features(network)])


def model_feature_values(networks: Sequence[Network]) -> np.ndarray:
    """``(n, 17)`` features of ``networks``."""
    out = np.zeros((len(networks), len(MODEL_FEATURE_NAMES)))
    for i, network in enumerate(networks):
        out[i] = network_model_features(network)
    return out
