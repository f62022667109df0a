"""Build the IR of a NAS-Bench-201 network straight from its string (no torch).

Layer names follow the module paths of :func:`search_spaces.nasbench201.torch_builder.build_torch`, so a
layer of the IR and the module that computes it share a name (``cells.3.edge_1_2.conv``). Adds, which are not
modules, are named ``cells.K.node_J.add_M`` (the M-th binary add of node J) and ``cells.K.add`` (the residual
sum of a reduction block).

The piece functions (:func:`add_stem`, :func:`add_edge`, :func:`add_cell`, :func:`add_reduction`,
:func:`add_head`) are public so that the fast featurizer can build single pieces with exactly the same code.
"""

from __future__ import annotations

from typing import Sequence

from nas_latency.errors import InvalidInputError
from nas_latency.ir import Network, NetworkBuilder
from search_spaces.nasbench201.codec import EDGES, OPS, parse_arch
from search_spaces.nasbench201.macro import (
    BLOCKS,
    DEFAULT_BATCH_SIZE,
    DEFAULT_NUM_CLASSES,
    INPUT_CHANNELS,
    INPUT_SIZE,
    STEM_CHANNELS,
    check_positive,
)


def _relu_conv_bn(b: NetworkBuilder, src: str, out_channels: int, kernel: int, stride: int, prefix: str) -> str:
    """ReLU → Conv k×k (pad (k−1)/2, no bias) → BatchNorm(affine): NAS-Bench-201's ``ReLUConvBN``."""
    x = b.relu(src, name=f"{prefix}.relu")
    x = b.conv(x, out_channels, kernel, stride=stride, padding=(kernel - 1) // 2, bias=False, name=f"{prefix}.conv")
    return b.batch_norm(x, affine=True, name=f"{prefix}.bn")


def add_stem(b: NetworkBuilder, src: str) -> str:
    """Conv 3×3 3→16 (pad 1, no bias) → BatchNorm(affine)."""
    x = b.conv(src, STEM_CHANNELS, 3, stride=1, padding=1, bias=False, name="stem.conv")
    return b.batch_norm(x, affine=True, name="stem.bn")


def add_edge(b: NetworkBuilder, src: str, op: str, prefix: str) -> str:
    """One cell edge applying ``op`` to ``src`` (stride 1, channels unchanged); returns its output tensor."""
    if op == "none":
        return b.zero(src, name=prefix)  # the official op computes x.mul(0.)
    if op == "skip_connect":
        return b.identity(src, name=prefix)
    if op == "nor_conv_1x1":
        return _relu_conv_bn(b, src, b.shape(src)[1], 1, 1, prefix)
    if op == "nor_conv_3x3":
        return _relu_conv_bn(b, src, b.shape(src)[1], 3, 1, prefix)
    if op == "avg_pool_3x3":
        return b.avg_pool(src, 3, stride=1, padding=1, count_include_pad=False, name=prefix)
    raise InvalidInputError(f"{prefix}: unknown operation {op!r}; known operations: {', '.join(OPS)}")


def add_node_sum(b: NetworkBuilder, terms: Sequence[str], prefix: str) -> str:
    """Sum edge outputs as a chain of binary adds in edge order: ``((e0 + e1) + e2)``."""
    acc = terms[0]
    for m, term in enumerate(terms[1:], start=1):
        acc = b.add(acc, term, name=f"{prefix}.add_{m}")
    return acc


def add_cell(b: NetworkBuilder, src: str, ops: Sequence[str], prefix: str) -> str:
    """A searched cell: node j (1..3) is the sum of the ops on its incoming edges; node 3 is the output."""
    nodes = [src]
    for target in (1, 2, 3):
        terms = [
            add_edge(b, nodes[source], op, f"{prefix}.edge_{source}_{target}")
            for (source, dst), op in zip(EDGES, ops)
            if dst == target
        ]
        nodes.append(add_node_sum(b, terms, f"{prefix}.node_{target}"))
    return nodes[3]


def add_reduction(b: NetworkBuilder, src: str, out_channels: int, prefix: str) -> str:
    """Residual reduction block (ResNet basic block, stride 2): ReLU→Conv3×3 s2→BN, ReLU→Conv3×3→BN, plus a
    shortcut AvgPool 2×2 s2 → Conv 1×1 (no bias, no BN); output = shortcut + main branch."""
    main = _relu_conv_bn(b, src, out_channels, 3, 2, f"{prefix}.conv_a")
    main = _relu_conv_bn(b, main, out_channels, 3, 1, f"{prefix}.conv_b")
    short = b.avg_pool(src, 2, stride=2, padding=0, count_include_pad=True, name=f"{prefix}.downsample.pool")
    short = b.conv(short, out_channels, 1, stride=1, padding=0, bias=False, name=f"{prefix}.downsample.conv")
    return b.add(short, main, name=f"{prefix}.add")


def add_head(b: NetworkBuilder, src: str, num_classes: int) -> str:
    """BN → ReLU, global average pool, flatten, Linear(C→classes, bias)."""
    x = b.batch_norm(src, affine=True, name="lastact.bn")
    x = b.relu(x, name="lastact.relu")
    x = b.global_avg_pool(x, name="global_pooling")
    x = b.flatten(x, axis=1, name="flatten")
    return b.linear(x, num_classes, bias=True, name="classifier")


def build_ir(arch: str, *, num_classes: int = DEFAULT_NUM_CLASSES, batch_size: int = DEFAULT_BATCH_SIZE) -> Network:
    """The whole CIFAR network of ``arch`` as IR (input ``(batch_size, 3, 32, 32)``), named by the string."""
    ops = parse_arch(arch)
    check_positive(num_classes, "num_classes")
    check_positive(batch_size, "batch_size")
    b = NetworkBuilder(arch)
    x = b.input((batch_size, INPUT_CHANNELS, INPUT_SIZE, INPUT_SIZE), name="input")
    x = add_stem(b, x)
    for block in BLOCKS:
        prefix = f"cells.{block.index}"
        if block.kind == "reduction":
            x = add_reduction(b, x, block.out_channels, prefix)
        else:
            x = add_cell(b, x, ops, prefix)
    return b.build([add_head(b, x, num_classes)])
