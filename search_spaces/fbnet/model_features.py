"""Cost-model features of FBNet architectures (the research's "full" features, 231 columns, plus 34 IR costs).

No intercept (the models add their own) and no standardization (the models fit it). Columns, in order:

* ``layerNN=block`` (198): one-hot block per layer, as :data:`~search_spaces.fbnet.space.ENCODING_NAMES`;
* ``stage{s}_macs_m`` (7), ``stage{s}_params_m`` (7): MACs and parameters (millions) of the searchable
  layers of each stage, from the IR;
* ``stage{s}_skip_count`` (7): ``skip`` blocks per stage;
* ``count={block}`` (9): how many layers use each block;
* ``log_macs``: natural log of the whole network's MACs (IR, stem to classifier);
* ``log_params``: natural log of the whole network's parameters (IR);
* ``depth``: number of non-``skip`` layers;
* ``cost.<group>.<quantity>`` (34): the whole network's IR features (:mod:`nas_latency.ir.features`: count, MACs,
  parameters, bytes read and written per op group, and their totals) that differ between architectures. A
  network's latency on a device that runs its layers one after another is close to a non-negative price per
  unit of each (:mod:`nas_latency.models.cost_nnls`).

The research's "log(1 + block MACs)" and "log(block params)" are ``log_macs`` and ``log_params`` here,
computed over the whole network from the IR (the stem and head add a constant).
"""

from __future__ import annotations

import numpy as np

from nas_latency.ir.features import IR_FEATURE_NAMES
from search_spaces.fbnet.codec import BLOCK_INDEX, BLOCKS, NUM_BLOCKS, NUM_LAYERS, layer_label
from search_spaces.fbnet.fast_features import block_feature_table
from search_spaces.fbnet.macro import SLOTS, STAGE_LAYERS

NUM_STAGES = len(STAGE_LAYERS)
_SKIP = BLOCK_INDEX["skip"]
_MACS = IR_FEATURE_NAMES.index("total.macs")
_PARAMS = IR_FEATURE_NAMES.index("total.params")
_STAGE_OF = np.array([slot.stage for slot in SLOTS])

#: the IR features that differ between FBNet architectures (the others are the stem's and head's constants)
COST_FEATURES: tuple[str, ...] = (
    "conv.count", "conv.macs", "conv.params", "conv.bytes_read", "conv.bytes_written",
    "grouped_conv.count", "grouped_conv.macs", "grouped_conv.params", "grouped_conv.bytes_read",
    "grouped_conv.bytes_written",
    "depthwise_conv.count", "depthwise_conv.macs", "depthwise_conv.params", "depthwise_conv.bytes_read",
    "depthwise_conv.bytes_written",
    "elementwise.count", "elementwise.bytes_read", "elementwise.bytes_written",
    "activation.count", "activation.bytes_read", "activation.bytes_written",
    "batch_norm.count", "batch_norm.params", "batch_norm.bytes_read", "batch_norm.bytes_written",
    "data_movement.count", "data_movement.bytes_read", "data_movement.bytes_written",
    "view.count",
    "total.count", "total.macs", "total.params", "total.bytes_read", "total.bytes_written",
)
_COST_COLUMNS = np.array([IR_FEATURE_NAMES.index(name) for name in COST_FEATURES])

MODEL_FEATURE_NAMES: tuple[str, ...] = (
    tuple(f"{layer_label(p)}={block}" for p in range(NUM_LAYERS) for block in BLOCKS)
    + tuple(f"stage{s}_macs_m" for s in range(NUM_STAGES))
    + tuple(f"stage{s}_params_m" for s in range(NUM_STAGES))
    + tuple(f"stage{s}_skip_count" for s in range(NUM_STAGES))
    + tuple(f"count={block}" for block in BLOCKS)
    + ("log_macs", "log_params", "depth")
    + tuple(f"cost.{name}" for name in COST_FEATURES)
)
assert len(MODEL_FEATURE_NAMES) == 265 and len(set(MODEL_FEATURE_NAMES)) == 265


def model_feature_values(codes: np.ndarray) -> np.ndarray:
    """``(n, 265)`` features (:data:`MODEL_FEATURE_NAMES`) of architectures given as ``(n, 22)`` block codes."""
    codes = np.asarray(codes, dtype=np.int64)
    n = codes.shape[0]
    table = block_feature_table()
    positions = np.arange(NUM_LAYERS)
    layer_macs = table.blocks[positions, codes, _MACS]  # (n, 22)
    layer_params = table.blocks[positions, codes, _PARAMS]
    stage_one_hot = (_STAGE_OF[:, None] == np.arange(NUM_STAGES)).astype(np.float64)  # (22, 7)
    is_skip = (codes == _SKIP).astype(np.float64)

    out = np.zeros((n, len(MODEL_FEATURE_NAMES)))
    out[np.arange(n)[:, None], positions * NUM_BLOCKS + codes] = 1.0
    column = NUM_LAYERS * NUM_BLOCKS
    for block in (layer_macs / 1e6, layer_params / 1e6, is_skip):
        out[:, column : column + NUM_STAGES] = block @ stage_one_hot
        column += NUM_STAGES
    out[:, column : column + NUM_BLOCKS] = (codes[:, :, None] == np.arange(NUM_BLOCKS)).sum(axis=1)
    column += NUM_BLOCKS
    out[:, column] = np.log(table.constant[_MACS] + layer_macs.sum(axis=1))
    out[:, column + 1] = np.log(table.constant[_PARAMS] + layer_params.sum(axis=1))
    out[:, column + 2] = NUM_LAYERS - is_skip.sum(axis=1)
    column += 3
    out[:, column:] = table.transform(codes)[:, _COST_COLUMNS]
    return out
