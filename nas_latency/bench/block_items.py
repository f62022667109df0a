"""Blocks (for the mapping model): conv-bn-relu, relu-conv-bn (NAS-Bench-201), depthwise-pointwise, ResNet basic
blocks, inverted residuals (FBNet blocks at their real slots), NAS-Bench-201 cells and reduction blocks, pool
stages, classifier heads, and transformer self-attention and MLP blocks (:func:`add_attention`,
:func:`add_packed_attention` with one q/k/v projection unbound into three, :func:`add_mlp`, and
:func:`add_glu_mlp` with its projection chunked into two halves). Every block's own layers are measured as
micro-kernels next to it (:func:`with_block_layers`).

Whole networks of a NAS space: :func:`space_network_items`.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np

from nas_latency.bench.items import BenchItem, Level, kernel_network
from nas_latency.errors import InvalidInputError
from nas_latency.ir import NetworkBuilder, OpKind
from nas_latency.models.layer_features import layer_key


# ---- blocks -------------------------------------------------------------------------------------------------
def _block(name: str, build: Callable[[NetworkBuilder, str], str], shape: tuple[int, ...]) -> BenchItem:
    b = NetworkBuilder(name)
    x = b.input(shape, name="x0")
    out = build(b, x)
    network = b.build([out])
    return BenchItem(f"block;{name}", "block", network, "block:" + name.split(";")[0])


def _conv_bn_act(b: NetworkBuilder, x: str, cout: int, k: int, s: int, *, groups: int = 1,
                 act: OpKind | None = OpKind.RELU) -> str:
    x = b.conv(x, cout, k, stride=s, padding=(k - 1) // 2, groups=groups)
    x = b.batch_norm(x)
    return b.activation(x, act) if act is not None else x


def add_attention(b: NetworkBuilder, x: str, heads: int) -> str:
    """A pre-norm self-attention block on ``x`` of shape ``(B, T, D)``: layer norm, query/key/value projections,
    the head split (reshape, transpose), scores ``Q @ K^T``, their scaling and softmax, the weighted values, the
    head merge, the output projection and the residual add. ``D`` must be a multiple of ``heads``."""
    shape = b.shape(x)
    if len(shape) != 3 or shape[2] % heads:
        raise InvalidInputError(f"network {b.name!r}: attention needs a (B, T, D) input with D a multiple of "
                                f"heads={heads}, {x!r} is {shape}")
    n, t, d = shape
    split = (n, t, heads, d // heads)
    h = b.layer_norm(x)
    q = b.transpose(b.reshape(b.linear(h, d), split), (0, 2, 1, 3))  # (B, H, T, d)
    k = b.transpose(b.reshape(b.linear(h, d), split), (0, 2, 3, 1))  # (B, H, d, T)
    v = b.transpose(b.reshape(b.linear(h, d), split), (0, 2, 1, 3))  # (B, H, T, d)
    weights = b.activation(b.scale(b.matmul(q, k)), OpKind.SOFTMAX)  # (B, H, T, T)
    out = b.transpose(b.matmul(weights, v), (0, 2, 1, 3))  # (B, T, H, d)
    return b.add(b.linear(b.reshape(out, shape), d), x)


def add_packed_attention(b: NetworkBuilder, x: str, heads: int) -> str:
    """A pre-norm self-attention block with one query/key/value projection (timm's ViT): layer norm, the linear
    ``D → 3·D``, its reshape to ``(B, T, 3, H, d)`` and transpose to the packed ``(3, B, H, T, d)``, three selects
    (``q, k, v = qkv.unbind(0)``), ``K^T``, then as :func:`add_attention` from the scores on. ``D`` must be a
    multiple of ``heads``."""
    shape = b.shape(x)
    if len(shape) != 3 or shape[2] % heads:
        raise InvalidInputError(f"network {b.name!r}: attention needs a (B, T, D) input with D a multiple of "
                                f"heads={heads}, {x!r} is {shape}")
    n, t, d = shape
    qkv = b.linear(b.layer_norm(x), 3 * d)
    packed = b.transpose(b.reshape(qkv, (n, t, 3, heads, d // heads)), (2, 0, 3, 1, 4))  # (3, B, H, T, d)
    q, k, v = (b.select(packed, 0) for _ in range(3))  # (B, H, T, d) each
    weights = b.activation(b.scale(b.matmul(q, b.transpose(k, (0, 1, 3, 2)))), OpKind.SOFTMAX)  # (B, H, T, T)
    out = b.transpose(b.matmul(weights, v), (0, 2, 1, 3))  # (B, T, H, d)
    return b.add(b.linear(b.reshape(out, shape), d), x)


def add_mlp(b: NetworkBuilder, x: str, expansion: int = 4) -> str:
    """A pre-norm transformer MLP block on ``x`` of shape ``(B, T, D)``: layer norm, ``D → expansion·D``, GELU,
    back to ``D``, residual add."""
    d = b.shape(x)[-1]
    h = b.activation(b.linear(b.layer_norm(x), expansion * d), OpKind.GELU)
    return b.add(b.linear(h, d), x)


def add_glu_mlp(b: NetworkBuilder, x: str, hidden: int) -> str:
    """A pre-norm gated MLP block (SwiGLU) on ``x`` of shape ``(B, T, D)``: layer norm, ``D → 2·hidden``, its two
    halves (``a, g = h.chunk(2, -1)``), ``a · SiLU(g)``, back to ``D``, residual add."""
    d = b.shape(x)[-1]
    h = b.linear(b.layer_norm(x), 2 * hidden)
    value, gate = b.slice(h, -1, hidden), b.slice(h, -1, hidden)
    return b.add(b.linear(b.mul(value, b.activation(gate, OpKind.SILU)), d), x)


def block_items(level: Level, *, seed: int = 0) -> list[BenchItem]:
    """Multi-layer blocks for the mapping model (a handful for ``quick``)."""
    from search_spaces.fbnet.codec import BLOCKS as FBNET_BLOCKS
    from search_spaces.fbnet.ir_builder import add_block
    from search_spaces.fbnet.macro import SLOTS
    from search_spaces.nasbench201.codec import OPS
    from search_spaces.nasbench201.ir_builder import add_cell, add_head, add_reduction

    rng = np.random.default_rng(seed + 17)
    items: list[BenchItem] = []
    quick = level == "quick"

    conv_bn_relu = [(16, 16, 32, 3, 1), (64, 64, 8, 3, 1)] if quick else [
        (16, 16, 32, 3, 1), (32, 32, 16, 3, 1), (64, 64, 8, 3, 1), (16, 32, 32, 1, 1), (64, 128, 8, 1, 1),
        (128, 128, 8, 3, 1), (3, 16, 32, 3, 1), (256, 256, 4, 3, 1), (64, 64, 56, 3, 1), (3, 64, 224, 7, 2),
        (32, 64, 32, 3, 2), (512, 512, 4, 3, 1)]
    for cin, cout, s, k, st in conv_bn_relu:
        items.append(_block(f"conv_bn_relu;{cin}-{cout};s={s};k={k};st={st}",
                            lambda b, x, cout=cout, k=k, st=st: _conv_bn_act(b, x, cout, k, st), (1, cin, s, s)))
    relu_conv_bn = [(16, 32, 3)] if quick else [(16, 32, 1), (16, 32, 3), (32, 16, 1), (32, 16, 3), (64, 8, 1),
                                                (64, 8, 3)]
    for c, s, k in relu_conv_bn:
        def build(b: NetworkBuilder, x: str, c: int = c, k: int = k) -> str:
            x = b.relu(x)
            x = b.conv(x, c, k, padding=(k - 1) // 2)
            return b.batch_norm(x)
        items.append(_block(f"relu_conv_bn;{c};s={s};k={k}", build, (1, c, s, s)))
    if not quick:
        for c, s, k, st, act in ((32, 56, 3, 1, OpKind.RELU6), (96, 56, 3, 2, OpKind.RELU6),
                                 (144, 28, 3, 1, OpKind.RELU6), (384, 14, 3, 1, OpKind.RELU6),
                                 (64, 16, 5, 1, OpKind.RELU)):
            def build(b: NetworkBuilder, x: str, c: int = c, k: int = k, st: int = st, act: OpKind = act) -> str:
                x = _conv_bn_act(b, x, c, k, st, groups=c, act=act)
                return _conv_bn_act(b, x, max(16, c // 4), 1, 1, act=None)
            items.append(_block(f"dw_pw;{c};s={s};k={k};st={st};{act.value}", build, (1, c, s, s)))
        for c, s, st in ((64, 8, 1), (32, 16, 1), (16, 32, 1), (64, 16, 2), (128, 8, 2), (256, 4, 1)):
            def build(b: NetworkBuilder, x: str, c: int = c, st: int = st) -> str:
                cout = c * st
                y = _conv_bn_act(b, x, cout, 3, st)
                y = _conv_bn_act(b, y, cout, 3, 1, act=None)
                short = _conv_bn_act(b, x, cout, 1, st, act=None) if st != 1 else x
                return b.relu(b.add(y, short))
            items.append(_block(f"basic_block;{c};s={s};st={st}", build, (1, c, s, s)))
        for c, s in ((16, 32), (64, 8), (128, 4)):
            def build(b: NetworkBuilder, x: str, c: int = c) -> str:
                x = _conv_bn_act(b, x, c, 3, 1)
                return b.max_pool(x, 2, stride=2)
            items.append(_block(f"conv_pool;{c};s={s}", build, (1, c, s, s)))
    # FBNet blocks at their real slots
    fb_choices = [(5, "k3_e3")] if quick else [
        (int(i), str(FBNET_BLOCKS[int(j)])) for i, j in zip(rng.choice(len(SLOTS), 14), rng.choice(8, 14))]
    for slot_index, block in fb_choices:
        slot = SLOTS[slot_index]

        def build(b: NetworkBuilder, x: str, block: str = block, slot=slot) -> str:  # noqa: ANN001
            return add_block(b, x, block, slot)
        items.append(_block(f"fbnet_block;{block};slot={slot_index}", build,
                            (1, slot.in_channels, slot.in_size, slot.in_size)))
    # NAS-Bench-201 cells and reductions
    cell_settings = [(16, 32)] if quick else [(16, 32), (32, 16), (64, 8)] * 4
    for c, s in cell_settings:
        ops = tuple(str(OPS[int(i)]) for i in rng.choice(len(OPS), 6))

        def build(b: NetworkBuilder, x: str, ops: tuple[str, ...] = ops) -> str:
            return add_cell(b, x, ops, "cell")
        items.append(_block(f"nb201_cell;{c};s={s};{'-'.join(ops)}", build, (1, c, s, s)))
    if not quick:
        for c, s in ((16, 32), (32, 16)):
            items.append(_block(f"nb201_reduction;{c};s={s}", lambda b, x, c=c: add_reduction(b, x, 2 * c, "red"),
                                (1, c, s, s)))
    # transformer blocks: (tokens, width, heads)
    attention = [(32, 64, 4)] if quick else [(16, 64, 4), (64, 128, 4), (128, 256, 8), (256, 256, 8), (64, 512, 8)]
    for t, d, h in attention:
        items.append(_block(f"attention;t={t};d={d};h={h}", lambda b, x, h=h: add_attention(b, x, h), (1, t, d)))
    if not quick:
        for t, d in ((16, 64), (64, 128), (128, 256), (64, 512)):
            items.append(_block(f"mlp;t={t};d={d}", lambda b, x: add_mlp(b, x), (1, t, d)))
    heads = [(64, 8, 10)] if quick else [(64, 8, 10), (352, 4, 100), (512, 1, 100), (1280, 7, 1000), (512, 7, 1000)]
    for c, s, classes in heads:
        def build(b: NetworkBuilder, x: str, classes: int = classes) -> str:
            x = b.global_avg_pool(x)
            x = b.flatten(x)
            return b.linear(x, classes)
        items.append(_block(f"head;{c};s={s};classes={classes}", build, (1, c, s, s)))
    if not quick:
        items.append(_block("nb201_head;64;s=8", lambda b, x: add_head(b, x, 10), (1, 64, 8, 8)))
    # transformer blocks with slices (after the others, which keep their order): (tokens, width, heads | hidden)
    packed = [(32, 64, 4)] if quick else [(16, 64, 4), (64, 128, 4), (128, 256, 8), (256, 256, 8), (64, 512, 8)]
    for t, d, h in packed:
        items.append(_block(f"packed_attention;t={t};d={d};h={h}", lambda b, x, h=h: add_packed_attention(b, x, h),
                            (1, t, d)))
    if not quick:
        for t, d, hidden in ((16, 64, 128), (64, 128, 256), (128, 256, 512), (64, 512, 1024)):
            items.append(_block(f"glu_mlp;t={t};d={d};hidden={hidden}",
                                lambda b, x, hidden=hidden: add_glu_mlp(b, x, hidden), (1, t, d)))
    seen: set[str] = set()
    unique = []
    for item in items:
        if item.key not in seen:
            seen.add(item.key)
            unique.append(item)
    return unique


BLOCK_LAYER_PREFIX = "blocklayer;"


def with_block_layers(blocks: Sequence[BenchItem]) -> list[BenchItem]:
    """Each block followed by its layers as micro-kernels (keys ``blocklayer;<layer key>``, each layer once), so
    that a sweep measures a block and its layers seconds apart: the mapping model compares them under the same
    machine load."""
    seen: set[str] = set()
    out: list[BenchItem] = []
    for block in blocks:
        out.append(block)
        for layer in block.network.layers:
            key = BLOCK_LAYER_PREFIX + layer_key(layer)
            if key not in seen:
                seen.add(key)
                out.append(BenchItem(key, "kernel", kernel_network(layer), "block_layer"))
    return out


# ---- whole networks -------------------------------------------------------------------------------------------
def space_network_items(space_name: str, archs: Sequence[str]) -> list[BenchItem]:
    from search_spaces import get_space

    space = get_space(space_name)
    return [BenchItem(space.canonical(a), "network", space.to_ir(space.canonical(a)), f"space:{space.name}")
            for a in archs]


def flops_span(items: Sequence[BenchItem]) -> tuple[float, float]:
    macs = [item.network.macs for item in items]
    return (float(min(macs)), float(max(macs))) if macs else (math.nan, math.nan)
