"""Micro-kernels to measure (one layer each). They come from four sources, all deduplicated by
:func:`~nas_latency.models.layer_features.layer_key`:

``grid``       a fixed grid per family: convolutions over channels × spatial size × kernel × stride (stems with 3
               input channels included), depthwise and grouped convolutions, linear layers, window and global
               pools, element-wise kinds (add, mul, ReLU/ReLU6, batch norm, zero, identity, ...) over channels ×
               size, channel shuffle, flatten, concat; transformer kernels in the sequence layout
               ``(batch, [heads,] tokens, features)`` (:func:`sequence_grid_kernels`: linear layers, matmuls,
               layer norm, transposes, scale, softmax, GELU, add, and slices: one of q, k, v of a packed tensor,
               a half or third of the features); and explicit pads of 1, 2 and 3 (:func:`pad_grid_kernels`: the
               reflection pads of image-to-image networks before 3×3, 5×5 and 7×7 convolutions);
``random``     random configurations: channels log-uniform in 8..1024, sizes from 1 to 112, kernels 1..7, strides
               1..2, under a MAC cap; and random transformer kernels (:func:`random_sequence_kernels`, then
               :func:`random_slice_kernels`), then random pads (:func:`random_pad_kernels`);
``prior``      the distinct layers of networks sampled from the NAS spaces (nn-Meter samples its kernel configs
               from the model zoo the same way); the seed is fixed and the networks themselves are never measured
               for fitting;
``adaptive``   neighbours (channels and size, or tokens and features, scaled by 0.6..1.6) of the kernels with the
               largest cross-validated error of a layer model (nn-Meter's adaptive sampling), see
               :func:`adaptive_kernels`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Iterable, Sequence

import numpy as np

from nas_latency.bench.items import LEVELS, BenchItem, Level, kernel_item
from nas_latency.errors import InvalidInputError
from nas_latency.ir import Layer, NetworkBuilder, OpKind, numel
from nas_latency.ir.ops import ACTIVATION_KINDS, CONV_KINDS
from nas_latency.models.layer_features import layer_key

#: Kinds a :class:`KernelSpec` can also run in the sequence layout of transformers, ``(batch, [heads,] tokens,
#: features)``.
SEQUENCE_KINDS: frozenset[OpKind] = ACTIVATION_KINDS | {
    OpKind.LINEAR, OpKind.MATMUL, OpKind.LAYER_NORM, OpKind.TRANSPOSE, OpKind.SCALE, OpKind.SLICE, OpKind.ADD,
    OpKind.MUL,
}
#: Kinds a :class:`KernelSpec` runs in the sequence layout only (``tokens`` required).
SEQUENCE_ONLY_KINDS: frozenset[OpKind] = frozenset(
    {OpKind.MATMUL, OpKind.LAYER_NORM, OpKind.TRANSPOSE, OpKind.SCALE, OpKind.SLICE})


@dataclass(frozen=True)
class KernelSpec:
    """A micro-kernel configuration: op kind, channels (``cin``→``cout``; in/out features for linear layers),
    square spatial ``size``, kernel, stride (padding ``(k−1)//2``), groups, batch.

    A ``pad`` kernel is that padding made explicit: ``(batch, cin, size, size)`` padded by ``(kernel − 1) // 2`` on
    every side (``kernel`` 3, 5, 7 → a pad of 1, 2, 3: the reflection pad before a ``kernel × kernel``
    convolution), so ``kernel`` is odd and at least 3, ``cout == cin``, stride and groups 1.

    With ``tokens`` set, the kernel runs in the sequence layout of transformers instead of on an image: its
    activation is ``(batch, tokens, cin)``, or ``(batch, heads, tokens, cin)`` with ``heads > 1`` (``size``,
    ``kernel``, ``stride`` and ``groups`` stay 1). Per kind (:data:`SEQUENCE_KINDS`; the kinds of
    :data:`SEQUENCE_ONLY_KINDS` need it):

    * ``linear``: ``cin → cout`` features per token;
    * ``matmul``: ``(..., tokens, cin) @ (..., cin, cout)`` (attention scores: ``cin`` the head size and ``cout``
      the tokens; attention-weighted values: ``cin`` the tokens and ``cout`` the head size);
    * ``layer_norm``: normalizes the last dimension (``cin``), affine;
    * ``transpose``: ``(batch, tokens, cin) → (batch, cin, tokens)`` with one head; with ``heads > 1`` the head
      split ``(batch, tokens, heads, cin) → (batch, heads, tokens, cin)`` (``cin`` the head size);
    * ``slice``: with ``parts == 1`` the first ``cout`` of the ``cin`` features (a narrow of the last dimension:
      one half of a chunk or GLU with ``cout = cin / 2``, one of q, k, v split off a ``(batch, tokens, 3·d)``
      projection with ``cout = cin / 3``); with ``parts > 1`` one part of ``parts`` packed along a leading
      dimension, ``(parts, batch, [heads,] tokens, cin) → (batch, [heads,] tokens, cin)`` (a select: one of q, k,
      v unbound from a packed ``(3, B, H, T, d)`` tensor; ``cout == cin``). ``parts`` applies to slices only;
    * ``scale``, activations (softmax over the last dimension), ``add``, ``mul``: the activation's shape
      (``cout == cin``).
    """

    op: OpKind
    cin: int
    cout: int
    size: int
    kernel: int = 1
    stride: int = 1
    groups: int = 1
    batch: int = 1
    tokens: int | None = None
    heads: int = 1
    parts: int = 1

    def __post_init__(self) -> None:
        where = (f"kernel spec {self.op.value} (cin={self.cin}, cout={self.cout}, tokens={self.tokens}, "
                 f"heads={self.heads}, parts={self.parts})")
        if isinstance(self.heads, bool) or not isinstance(self.heads, int) or self.heads < 1:
            raise InvalidInputError(f"{where}: heads must be a positive integer, got {self.heads!r}")
        if isinstance(self.parts, bool) or not isinstance(self.parts, int) or self.parts < 1:
            raise InvalidInputError(f"{where}: parts must be a positive integer, got {self.parts!r}")
        if self.parts != 1 and self.op is not OpKind.SLICE:
            raise InvalidInputError(f"{where}: parts apply to slice kernels only")
        if self.op is OpKind.PAD and (self.kernel < 3 or self.kernel % 2 == 0 or self.cout != self.cin
                                      or (self.stride, self.groups) != (1, 1)):
            raise InvalidInputError(f"{where}: a pad kernel pads (kernel - 1) // 2 on every side: kernel must be odd "
                                    f"and >= 3 (got {self.kernel}), cout equal to cin, stride and groups 1")
        if self.tokens is None:
            if self.op in SEQUENCE_ONLY_KINDS:
                raise InvalidInputError(f"{where}: {self.op.value} kernels need the sequence layout (tokens)")
            if self.heads != 1:
                raise InvalidInputError(f"{where}: heads apply to the sequence layout only (set tokens)")
            return
        if isinstance(self.tokens, bool) or not isinstance(self.tokens, int) or self.tokens < 1:
            raise InvalidInputError(f"{where}: tokens must be a positive integer or None, got {self.tokens!r}")
        if self.op not in SEQUENCE_KINDS:
            raise InvalidInputError(f"{where}: the sequence layout applies to "
                                    f"{', '.join(sorted(k.value for k in SEQUENCE_KINDS))}, not {self.op.value}")
        if (self.size, self.kernel, self.stride, self.groups) != (1, 1, 1, 1):
            raise InvalidInputError(f"{where}: size, kernel, stride and groups must be 1 in the sequence layout, got "
                                    f"{(self.size, self.kernel, self.stride, self.groups)}")
        if self.op is OpKind.SLICE and self.parts == 1:
            if not 1 <= self.cout <= self.cin:
                raise InvalidInputError(f"{where}: a slice keeps 1..cin of the features: cout must be in 1..{self.cin}")
        elif self.op not in (OpKind.LINEAR, OpKind.MATMUL) and self.cout != self.cin:
            raise InvalidInputError(f"{where}: {self.op.value} keeps the features: cout must equal cin")

    def layer(self) -> Layer:
        if self.tokens is not None:
            return self._sequence_layer(self.tokens)
        b = NetworkBuilder("kernel")
        n, c, s, k = self.batch, self.cin, self.size, self.kernel
        op = self.op
        if op is OpKind.LINEAR:
            x = b.input((n, c), name="x0")
            b.linear(x, self.cout, bias=True)
            return b.build().layers[-1]
        x = b.input((n, c, s, s), name="x0")
        pad = (k - 1) // 2
        if op in CONV_KINDS:
            b.conv(x, self.cout, k, stride=self.stride, padding=pad, groups=self.groups)
        elif op is OpKind.AVG_POOL:
            b.avg_pool(x, k, stride=self.stride, padding=pad, count_include_pad=False)
        elif op is OpKind.MAX_POOL:
            b.max_pool(x, k, stride=self.stride, padding=pad)
        elif op is OpKind.GLOBAL_AVG_POOL:
            b.global_avg_pool(x)
        elif op is OpKind.GLOBAL_MAX_POOL:
            b.global_max_pool(x)
        elif op in (OpKind.ADD, OpKind.MUL):
            y = b.input((n, c, s, s), name="x1")
            (b.add if op is OpKind.ADD else b.mul)(x, y)
        elif op is OpKind.CONCAT:
            y = b.input((n, self.cout, s, s), name="x1")
            b.concat([x, y], axis=1)
        elif op in ACTIVATION_KINDS:
            b.activation(x, op)
        elif op is OpKind.BATCH_NORM:
            b.batch_norm(x)
        elif op is OpKind.CHANNEL_SHUFFLE:
            b.channel_shuffle(x, self.groups)
        elif op is OpKind.ZERO:
            b.zero(x)
        elif op is OpKind.IDENTITY:
            b.identity(x)
        elif op is OpKind.FLATTEN:
            b.flatten(x)
        elif op is OpKind.PAD:
            b.pad(x, pad)
        else:
            raise InvalidInputError(f"no micro-kernel generator for op kind {op.value}")
        return b.build().layers[-1]

    def _sequence_layer(self, tokens: int) -> Layer:
        """The layer in the sequence layout (see the class docstring)."""
        b = NetworkBuilder("kernel")
        op = self.op
        lead = (self.batch, self.heads) if self.heads > 1 else (self.batch,)
        if op is OpKind.TRANSPOSE:
            if self.heads > 1:
                x = b.input((self.batch, tokens, self.heads, self.cin), name="x0")
                b.transpose(x, (0, 2, 1, 3))
            else:
                x = b.input((self.batch, tokens, self.cin), name="x0")
                b.transpose(x, (0, 2, 1))
            return b.build().layers[-1]
        if op is OpKind.SLICE and self.parts > 1:
            b.select(b.input((self.parts, *lead, tokens, self.cin), name="x0"), 0)
            return b.build().layers[-1]
        x = b.input((*lead, tokens, self.cin), name="x0")
        if op is OpKind.LINEAR:
            b.linear(x, self.cout, bias=True)
        elif op is OpKind.MATMUL:
            b.matmul(x, b.input((*lead, self.cin, self.cout), name="x1"))
        elif op is OpKind.LAYER_NORM:
            b.layer_norm(x)
        elif op is OpKind.SCALE:
            b.scale(x)
        elif op is OpKind.SLICE:
            b.slice(x, -1, self.cout)
        elif op in (OpKind.ADD, OpKind.MUL):
            y = b.input((*lead, tokens, self.cin), name="x1")
            (b.add if op is OpKind.ADD else b.mul)(x, y)
        elif op in ACTIVATION_KINDS:
            b.activation(x, op)
        else:  # __post_init__ admits only SEQUENCE_KINDS
            raise InvalidInputError(f"no sequence-layout micro-kernel generator for op kind {op.value}")
        return b.build().layers[-1]

    def macs(self) -> int:
        return self.layer().macs

    def perturbed(self, rng: np.random.Generator) -> "KernelSpec":
        """A neighbour: channels and size scaled by 0.6..1.6 (rounded; structure kept: depthwise stays
        depthwise, group counts still divide, 3-channel stems keep 3 inputs; in the sequence layout the tokens
        and features are scaled, the heads and packed parts kept, a slice's share of the features too)."""

        def scale(value: int, multiple: int) -> int:
            if value <= 4:
                return value
            scaled = value * float(np.exp(rng.uniform(np.log(0.6), np.log(1.6))))
            return max(multiple, int(round(scaled / multiple)) * multiple)

        if self.tokens is not None:
            tokens = scale(self.tokens, 8)
            cin = scale(self.cin, 8)
            cout = scale(self.cout, 8) if self.op in (OpKind.LINEAR, OpKind.MATMUL) else cin
            if self.op is OpKind.SLICE:
                cout = min(cin, max(1, int(round(cin * self.cout / self.cin))))
            return replace(self, cin=cin, cout=cout, tokens=tokens)
        size = self.size if self.op is OpKind.LINEAR else max(1, int(round(self.size * float(
            np.exp(rng.uniform(np.log(0.6), np.log(1.6)))))))
        if self.op is OpKind.DEPTHWISE_CONV:
            c = scale(self.cin, 8)
            return replace(self, cin=c, cout=c, groups=c, size=size)
        multiple = max(8, self.groups)
        cin = scale(self.cin, multiple)
        cout = scale(self.cout, multiple) if self.op in CONV_KINDS or self.op in (OpKind.LINEAR, OpKind.CONCAT) else cin
        if self.op is OpKind.CHANNEL_SHUFFLE:
            cout = cin
        return replace(self, cin=cin, cout=cout, size=size)


def _sequence_candidate(layer: Layer) -> KernelSpec | None:
    """The sequence-layout spec a layer would come from, read off its shapes (checked by the caller)."""
    shape, out = layer.input_shapes[0], layer.output_shape
    if layer.op is OpKind.SLICE and len(out) == len(shape) - 1:  # a select of one packed part
        parts, shape = shape[0], shape[1:]
        if len(shape) == 3:
            return KernelSpec(layer.op, shape[2], shape[2], 1, batch=shape[0], tokens=shape[1], parts=parts)
        if len(shape) == 4:
            return KernelSpec(layer.op, shape[3], shape[3], 1, batch=shape[0], tokens=shape[2], heads=shape[1],
                              parts=parts)
        return None
    if layer.op is OpKind.TRANSPOSE:
        if len(shape) == 3:
            return KernelSpec(layer.op, shape[2], shape[2], 1, batch=shape[0], tokens=shape[1])
        if len(shape) == 4:
            return KernelSpec(layer.op, shape[3], shape[3], 1, batch=shape[0], tokens=shape[1], heads=shape[2])
        return None
    if len(shape) == 3:
        return KernelSpec(layer.op, shape[2], out[-1], 1, batch=shape[0], tokens=shape[1])
    if len(shape) == 4:
        return KernelSpec(layer.op, shape[3], out[-1], 1, batch=shape[0], tokens=shape[2], heads=shape[1])
    return None


def _candidate_spec(layer: Layer) -> KernelSpec | None:
    """The spec a layer would come from, read off its shapes (checked by :func:`spec_from_layer`). Softmax is
    read in the sequence layout (its 4-D tensors are attention scores, which need not be square)."""
    shape = layer.input_shapes[0]
    if layer.op is OpKind.LINEAR and len(shape) == 2:
        return KernelSpec(OpKind.LINEAR, shape[1], layer.output_shape[1], 1, batch=shape[0])
    if (layer.op in SEQUENCE_ONLY_KINDS or layer.op is OpKind.SOFTMAX
            or (layer.op in SEQUENCE_KINDS and len(shape) == 3)):
        return _sequence_candidate(layer)
    if len(shape) != 4 or shape[2] != shape[3]:
        return None
    kernel = layer.kernel[0] if layer.kernel else 1
    stride = layer.stride[0] if layer.stride else 1
    if layer.op is OpKind.PAD:  # the padding of a (2p + 1)-wide window, p on every side (else no spec's)
        assert layer.padding is not None
        kernel = 2 * layer.padding[0] + 1
    # a concat's ``cout`` is the channels of its second input (its output has both); a flatten keeps ``cin``
    cout = layer.output_shape[1]
    if layer.op is OpKind.CONCAT:
        cout = layer.input_shapes[-1][1]
    elif layer.op is OpKind.FLATTEN:
        cout = shape[1]
    return KernelSpec(layer.op, shape[1], cout, shape[2], kernel, stride, layer.groups, shape[0])


def spec_from_layer(layer: Layer) -> KernelSpec | None:
    """The :class:`KernelSpec` of a layer, when it is one of the generated shapes (square, same padding, pads
    equal on every side; in the sequence layout: ``(batch, [heads,] tokens, features)``, transposes and slices as
    the spec makes them)."""
    try:
        spec = _candidate_spec(layer)
        return spec if spec is not None and layer_key(spec.layer()) == layer_key(layer) else None
    except InvalidInputError:
        return None


_MAX_ELEMENTS = 4_000_000  # largest activation tensor in a generated kernel (16 MB in float32)


def _fits(spec: KernelSpec, max_macs: float) -> bool:
    try:
        layer = spec.layer()
    except InvalidInputError:
        return False
    largest = max(numel(s) for s in (*layer.input_shapes, layer.output_shape))
    return layer.macs <= max_macs and largest <= _MAX_ELEMENTS


def grid_kernels(level: Level, *, max_macs: float = 3e8) -> list[KernelSpec]:
    """The fixed grid (a few dozen kernels for ``quick``, several hundred for ``full``)."""
    specs: list[KernelSpec] = []
    add = specs.append
    if level == "quick":
        for c in (16, 64):
            for s in (8, 16):
                for k in (1, 3):
                    add(KernelSpec(OpKind.CONV, c, c, s, k))
        add(KernelSpec(OpKind.CONV, 3, 16, 32, 3))
        add(KernelSpec(OpKind.DEPTHWISE_CONV, 64, 64, 16, 3, groups=64))
        add(KernelSpec(OpKind.DEPTHWISE_CONV, 128, 128, 8, 5, groups=128))
        add(KernelSpec(OpKind.LINEAR, 64, 10, 1))
        add(KernelSpec(OpKind.LINEAR, 256, 100, 1))
        add(KernelSpec(OpKind.AVG_POOL, 16, 16, 32, 3))
        add(KernelSpec(OpKind.MAX_POOL, 32, 32, 16, 3, 2))
        add(KernelSpec(OpKind.GLOBAL_AVG_POOL, 64, 64, 8))
        for op in (OpKind.ADD, OpKind.RELU, OpKind.BATCH_NORM, OpKind.ZERO, OpKind.IDENTITY):
            for c, s in ((16, 32), (64, 8)):
                add(KernelSpec(op, c, c, s))
        add(KernelSpec(OpKind.FLATTEN, 64, 64, 1))
        specs += sequence_grid_kernels(level)
        specs += pad_grid_kernels(level)
        return [s for s in specs if _fits(s, max_macs)]
    for c in (16, 32, 64, 128, 256, 512):
        for s in (4, 8, 16, 32, 56):
            for k in (1, 3):
                for stride in (1, 2):
                    add(KernelSpec(OpKind.CONV, c, c, s, k, stride))
    for c in (16, 32, 64, 128, 256):
        for s in (8, 16, 32):
            add(KernelSpec(OpKind.CONV, c, 2 * c, s, 1))
            add(KernelSpec(OpKind.CONV, 2 * c, c, s, 1))
            add(KernelSpec(OpKind.CONV, c, 2 * c, s, 3, 2))
    for cout in (16, 32, 64):
        for s in (32, 224):
            for k in (3, 7):
                for stride in (1, 2):
                    add(KernelSpec(OpKind.CONV, 3, cout, s, k, stride))
    for c in (16, 64, 256, 1024):
        for s in (4, 8, 16, 32, 56, 112):
            for k in (3, 5):
                for stride in (1, 2):
                    add(KernelSpec(OpKind.DEPTHWISE_CONV, c, c, s, k, stride, groups=c))
    for c in (32, 128, 512):
        for g in (2, 4):
            for s in (4, 8, 16, 32):
                add(KernelSpec(OpKind.GROUPED_CONV, c, c, s, 1, groups=g))
    for fin in (64, 256, 512, 1024, 1504, 2048, 4096):
        for fout in (10, 100, 1000):
            add(KernelSpec(OpKind.LINEAR, fin, fout, 1))
    for c in (16, 32, 64, 128):
        for s in (8, 16, 32):
            add(KernelSpec(OpKind.AVG_POOL, c, c, s, 3, 1))
    for c in (16, 64):
        for s in (32, 112):
            add(KernelSpec(OpKind.MAX_POOL, c, c, s, 3, 2))
    for c in (64, 128, 256, 512):
        for s in (2, 4, 8, 16, 32):
            add(KernelSpec(OpKind.MAX_POOL, c, c, s, 2, 2))
    for c in (64, 256, 1024, 1504, 2048):
        for s in (1, 2, 4, 7, 8):
            add(KernelSpec(OpKind.GLOBAL_AVG_POOL, c, c, s))
    for op in (OpKind.ADD, OpKind.RELU, OpKind.RELU6, OpKind.BATCH_NORM, OpKind.ZERO, OpKind.IDENTITY):
        for c in (16, 64, 256, 1024):
            for s in (4, 8, 16, 32, 56, 112):
                add(KernelSpec(op, c, c, s))
    for op in (OpKind.MUL, OpKind.SIGMOID, OpKind.HARD_SWISH):
        for c, s in ((16, 32), (64, 16), (256, 8), (1024, 4)):
            add(KernelSpec(op, c, c, s))
    for c in (32, 128, 512):
        for s in (4, 8, 16, 32):
            add(KernelSpec(OpKind.CHANNEL_SHUFFLE, c, c, s, groups=2))
    for c, s in ((64, 1), (512, 1), (1504, 1), (1280, 1), (512, 2), (64, 4)):
        add(KernelSpec(OpKind.FLATTEN, c, c, s))
    for c, s in ((16, 32), (64, 16), (256, 8)):
        add(KernelSpec(OpKind.CONCAT, c, c, s))
        add(KernelSpec(OpKind.CONCAT, c, 2 * c, s))
    specs += sequence_grid_kernels(level)
    specs += pad_grid_kernels(level)  # after the kernels above, which keep their order
    return [s for s in specs if _fits(s, max_macs)]


def pad_grid_kernels(level: Level) -> list[KernelSpec]:
    """The grid of explicit pads, ``(1, C, H, H)`` (see :class:`KernelSpec`): pads of 1 (``kernel`` 3, before a 3×3
    convolution: CycleGAN's residual blocks, ResNet generators) over channels 16..256 × sizes 8..64; pads of 2 and 3
    (5×5 and 7×7 convolutions) on a few of those; the 3-channel image padded by 3 before a 7×7 stem (CycleGAN's
    ``ReflectionPad2d(3)``) at 32..256, and the 64-channel map before its 7×7 output convolution. Two for
    ``quick``."""
    if level == "quick":
        return [KernelSpec(OpKind.PAD, 64, 64, 16, 3), KernelSpec(OpKind.PAD, 3, 3, 64, 7)]
    specs: list[KernelSpec] = []
    add = specs.append
    for c in (16, 32, 64, 128, 256):
        for s in (8, 16, 32, 64):
            add(KernelSpec(OpKind.PAD, c, c, s, 3))
    for c, s in ((64, 32), (128, 16), (256, 8)):
        for k in (5, 7):
            add(KernelSpec(OpKind.PAD, c, c, s, k))
    for s in (32, 64, 128, 256):
        add(KernelSpec(OpKind.PAD, 3, 3, s, 7))
    for s in (64, 128):
        add(KernelSpec(OpKind.PAD, 64, 64, s, 7))
    return specs


_TOKENS = (16, 64, 128, 256)
_WIDTHS = (64, 128, 256, 512)
_HEADS = (4, 8)
_HEAD_SIZES = (32, 64)


def sequence_grid_kernels(level: Level) -> list[KernelSpec]:
    """The grid of transformer kernels, in the sequence layout (batch 1): tokens 16..256, widths 64..512, 4 or 8
    heads of 32 or 64 features. Layer norm, scale and the ``(B, T, D) → (B, D, T)`` transpose on ``(tokens,
    width)``, linear layers ``width → width`` and the MLP's ``width ↔ 4·width``, the residual add and the MLP's
    GELU; per head: the attention scores ``(T, d) @ (d, T)``, their scaling and softmax, the weighted values
    ``(T, T) @ (T, d)`` and the head split ``(T, H, d) → (H, T, d)``; slices: a half (chunk, GLU) and a third
    (q, k or v split off one projection) of ``2·width`` and ``3·width`` features, and one of q, k, v unbound from a
    packed ``(3, 1, H, T, d)`` tensor. A handful of these for ``quick``."""
    specs: list[KernelSpec] = []
    add = specs.append
    if level == "quick":
        add(KernelSpec(OpKind.LINEAR, 128, 128, 1, tokens=64))
        add(KernelSpec(OpKind.LAYER_NORM, 128, 128, 1, tokens=64))
        add(KernelSpec(OpKind.TRANSPOSE, 128, 128, 1, tokens=64))
        add(KernelSpec(OpKind.TRANSPOSE, 32, 32, 1, tokens=64, heads=4))
        add(KernelSpec(OpKind.MATMUL, 32, 64, 1, tokens=64, heads=4))
        add(KernelSpec(OpKind.MATMUL, 64, 32, 1, tokens=64, heads=4))
        add(KernelSpec(OpKind.SCALE, 64, 64, 1, tokens=64, heads=4))
        add(KernelSpec(OpKind.SLICE, 256, 128, 1, tokens=64))
        add(KernelSpec(OpKind.SLICE, 32, 32, 1, tokens=64, heads=4, parts=3))
        return specs
    for t in _TOKENS:
        for d in _WIDTHS:
            for op in (OpKind.LAYER_NORM, OpKind.SCALE, OpKind.TRANSPOSE):
                add(KernelSpec(op, d, d, 1, tokens=t))
            add(KernelSpec(OpKind.LINEAR, d, d, 1, tokens=t))
            add(KernelSpec(OpKind.LINEAR, d, 4 * d, 1, tokens=t))
            add(KernelSpec(OpKind.LINEAR, 4 * d, d, 1, tokens=t))
        for d in (128, 512):
            add(KernelSpec(OpKind.ADD, d, d, 1, tokens=t))
            add(KernelSpec(OpKind.GELU, 4 * d, 4 * d, 1, tokens=t))
        for h in _HEADS:
            add(KernelSpec(OpKind.SCALE, t, t, 1, tokens=t, heads=h))
            add(KernelSpec(OpKind.SOFTMAX, t, t, 1, tokens=t, heads=h))
            for d in _HEAD_SIZES:
                add(KernelSpec(OpKind.MATMUL, d, t, 1, tokens=t, heads=h))
                add(KernelSpec(OpKind.MATMUL, t, d, 1, tokens=t, heads=h))
                add(KernelSpec(OpKind.TRANSPOSE, d, d, 1, tokens=t, heads=h))
    for t in _TOKENS:  # after the kernels above, which keep their order
        for d in _WIDTHS:
            add(KernelSpec(OpKind.SLICE, 2 * d, d, 1, tokens=t))
            add(KernelSpec(OpKind.SLICE, 3 * d, d, 1, tokens=t))
        for h in _HEADS:
            for d in _HEAD_SIZES:
                add(KernelSpec(OpKind.SLICE, d, d, 1, tokens=t, heads=h, parts=3))
    return specs


def _log_uniform(rng: np.random.Generator, low: int, high: int, multiple: int) -> int:
    """A draw log-uniform in ``low..high``, rounded to a multiple of ``multiple`` (at least ``multiple``)."""
    value = float(np.exp(rng.uniform(np.log(low), np.log(high))))
    return max(multiple, int(round(value / multiple)) * multiple)


def random_sequence_kernels(n: int, rng: np.random.Generator, *, max_macs: float = 3e8) -> list[KernelSpec]:
    """``n`` random transformer kernels (sequence layout): tokens log-uniform in 8..512, widths in 32..1024
    (multiples of 8), 1 to 16 heads of 8..128 features, under the MAC cap."""
    ops = (OpKind.LINEAR, OpKind.MATMUL, OpKind.LAYER_NORM, OpKind.TRANSPOSE, OpKind.SCALE, OpKind.SOFTMAX,
           OpKind.GELU, OpKind.ADD)
    out: list[KernelSpec] = []
    tries = 0

    while len(out) < n and tries < 50 * max(n, 1):
        tries += 1
        op = ops[int(rng.integers(len(ops)))]
        tokens = _log_uniform(rng, 8, 512, 8)
        width = _log_uniform(rng, 32, 1024, 8)
        heads = int(rng.choice([1, 2, 4, 8, 12, 16]))
        head_size = _log_uniform(rng, 8, 128, 8)
        if op is OpKind.LINEAR:
            spec = KernelSpec(op, width, _log_uniform(rng, 32, 4096, 8), 1, tokens=tokens)
        elif op is OpKind.MATMUL:
            cin, cout = (head_size, tokens) if rng.random() < 0.5 else (tokens, head_size)
            spec = KernelSpec(op, cin, cout, 1, tokens=tokens, heads=heads)
        elif op in (OpKind.SCALE, OpKind.SOFTMAX) and rng.random() < 0.5:  # on attention scores
            spec = KernelSpec(op, tokens, tokens, 1, tokens=tokens, heads=heads)
        elif op is OpKind.TRANSPOSE and heads > 1:  # the head split
            spec = KernelSpec(op, head_size, head_size, 1, tokens=tokens, heads=heads)
        else:
            spec = KernelSpec(op, width, width, 1, tokens=tokens)
        if _fits(spec, max_macs):
            out.append(spec)
    return out


def random_slice_kernels(n: int, rng: np.random.Generator, *, max_macs: float = 3e8) -> list[KernelSpec]:
    """``n`` random slices in the sequence layout: half of them a narrow of a half, third or quarter of the
    features (widths 32..4096), half a select of one of 2 or 3 packed parts (1 to 16 heads of 8..128 features, or
    one head of a whole width 32..1024); tokens log-uniform in 8..512. (Drawn apart from
    :func:`random_sequence_kernels`, after it, so that a seed's earlier draws stay what they were.)"""
    out: list[KernelSpec] = []
    tries = 0

    while len(out) < n and tries < 50 * max(n, 1):
        tries += 1
        tokens = _log_uniform(rng, 8, 512, 8)
        if rng.random() < 0.5:
            width = _log_uniform(rng, 32, 4096, 8)
            spec = KernelSpec(OpKind.SLICE, width, width // int(rng.choice([2, 3, 4])), 1, tokens=tokens)
        else:
            heads = int(rng.choice([1, 2, 4, 8, 12, 16]))
            features = _log_uniform(rng, 32, 1024, 8) if heads == 1 else _log_uniform(rng, 8, 128, 8)
            spec = KernelSpec(OpKind.SLICE, features, features, 1, tokens=tokens, heads=heads,
                              parts=int(rng.choice([2, 3])))
        if _fits(spec, max_macs):
            out.append(spec)
    return out


_PAD_SIZES = (4, 7, 8, 14, 16, 28, 32, 56, 64, 128, 256)  # each larger than a pad of 3


def random_pad_kernels(n: int, rng: np.random.Generator, *, max_macs: float = 3e8) -> list[KernelSpec]:
    """``n`` random explicit pads ``(1, C, H, H)``: a pad of 1, 2 or 3 (``kernel`` 3, 5 or 7; probabilities 0.6,
    0.15, 0.25), channels log-uniform in 8..512 (multiples of 8; the 3 channels of an image one time in ten), sizes
    from 4 to 256 larger than the pad (so reflect is possible), under the element cap. (Drawn after
    :func:`random_slice_kernels`, so that a seed's earlier draws stay what they were.)"""
    out: list[KernelSpec] = []
    tries = 0
    while len(out) < n and tries < 50 * max(n, 1):
        tries += 1
        kernel = int(rng.choice([3, 5, 7], p=[0.6, 0.15, 0.25]))
        channels = 3 if rng.random() < 0.1 else _log_uniform(rng, 8, 512, 8)
        size = int(rng.choice(_PAD_SIZES))
        spec = KernelSpec(OpKind.PAD, channels, channels, size, kernel)
        if _fits(spec, max_macs):
            out.append(spec)
    return out


_RANDOM_OPS: tuple[tuple[OpKind, float], ...] = (
    (OpKind.CONV, 0.36), (OpKind.DEPTHWISE_CONV, 0.14), (OpKind.GROUPED_CONV, 0.04), (OpKind.LINEAR, 0.04),
    (OpKind.AVG_POOL, 0.03), (OpKind.MAX_POOL, 0.03), (OpKind.GLOBAL_AVG_POOL, 0.03), (OpKind.ADD, 0.07),
    (OpKind.RELU, 0.06), (OpKind.RELU6, 0.03), (OpKind.BATCH_NORM, 0.07), (OpKind.ZERO, 0.02),
    (OpKind.IDENTITY, 0.02), (OpKind.CHANNEL_SHUFFLE, 0.02), (OpKind.FLATTEN, 0.01), (OpKind.CONCAT, 0.01),
    (OpKind.HARD_SWISH, 0.01), (OpKind.SIGMOID, 0.01),
)
_SIZES = (1, 2, 4, 7, 8, 14, 16, 28, 32, 56, 64, 112)


def random_kernels(n: int, rng: np.random.Generator, *, max_macs: float = 3e8) -> list[KernelSpec]:
    """``n`` random configurations (see the module docstring)."""
    ops = [op for op, _ in _RANDOM_OPS]
    weights = np.array([w for _, w in _RANDOM_OPS])
    weights = weights / weights.sum()
    out: list[KernelSpec] = []
    tries = 0
    while len(out) < n and tries < 50 * max(n, 1):
        tries += 1
        op = ops[int(rng.choice(len(ops), p=weights))]
        cin, cout = _log_uniform(rng, 8, 1024, 8), _log_uniform(rng, 8, 1024, 8)
        size = int(rng.choice(_SIZES))
        kernel = int(rng.choice([1, 3, 5, 7], p=[0.4, 0.42, 0.12, 0.06]))
        stride = int(rng.choice([1, 2], p=[0.75, 0.25]))
        groups = 1
        if op is OpKind.CONV and rng.random() < 0.1:
            cin = 3
        if op is OpKind.DEPTHWISE_CONV:
            cout = groups = cin
            kernel = int(rng.choice([3, 5, 7], p=[0.6, 0.3, 0.1]))
        elif op is OpKind.GROUPED_CONV:
            groups = int(rng.choice([2, 4]))
            cout = cin
        elif op in (OpKind.AVG_POOL, OpKind.MAX_POOL):
            kernel = int(rng.choice([2, 3]))
            stride = int(rng.choice([1, 2])) if kernel == 3 else 2
            cout = cin
        elif op is OpKind.LINEAR:
            size = 1
            cout = int(rng.choice([10, 100, 1000, cout]))
        elif op is OpKind.CHANNEL_SHUFFLE:
            groups = 2
            cout = cin
        elif op is not OpKind.CONV and op is not OpKind.CONCAT:
            cout = cin
        if op not in CONV_KINDS and op not in (OpKind.AVG_POOL, OpKind.MAX_POOL):
            kernel, stride = 1, 1
        if op is OpKind.CONV and kernel > size:
            kernel = 1
        spec = KernelSpec(op, cin, cout, size, kernel, stride, groups)
        if _fits(spec, max_macs):
            out.append(spec)
    return out


def prior_layers(n: int, rng: np.random.Generator, *, archs_per_space: int = 40, seed: int = 1234,
                 max_macs: float = 3e8) -> list[Layer]:
    """``n`` distinct layers drawn from networks sampled (with ``seed``) from NAS-Bench-201 and FBNet."""
    from search_spaces import get_space

    by_key: dict[str, Layer] = {}
    for name in ("nasbench201", "fbnet"):
        space = get_space(name)
        for arch in space.sample(archs_per_space, seed=seed):
            for layer in space.to_ir(arch).layers:
                if layer.macs <= max_macs:
                    by_key.setdefault(layer_key(layer), layer)
    keys = sorted(by_key)
    chosen = rng.choice(len(keys), size=min(n, len(keys)), replace=False) if keys else []
    return [by_key[keys[int(i)]] for i in chosen]


def adaptive_kernels(worst: Sequence[Layer], per_kernel: int, rng: np.random.Generator, *,
                     max_macs: float = 3e8, exclude: Iterable[str] = ()) -> list[Layer]:
    """Up to ``per_kernel`` new neighbours of each layer in ``worst`` (those a model predicts worst)."""
    seen = set(exclude)
    out: list[Layer] = []
    for layer in worst:
        spec = spec_from_layer(layer)
        if spec is None:
            continue
        made = 0
        for _ in range(10 * per_kernel):
            if made >= per_kernel:
                break
            candidate = spec.perturbed(rng)
            if not _fits(candidate, max_macs):
                continue
            new = candidate.layer()
            key = layer_key(new)
            if key in seen:
                continue
            seen.add(key)
            out.append(new)
            made += 1
    return out


def unique_kernel_items(layers: Iterable[tuple[Layer, str]], exclude: Iterable[str] = ()) -> list[BenchItem]:
    """Kernel items for ``(layer, origin)`` pairs, the first of each key kept, keys in ``exclude`` dropped."""
    seen = set(exclude)
    items = []
    for layer, origin in layers:
        key = layer_key(layer)
        if key not in seen:
            seen.add(key)
            items.append(kernel_item(layer, origin))
    return items


def kernel_sweep(level: Level, *, seed: int = 0, max_macs: float = 3e8) -> list[BenchItem]:
    """Grid, random and prior micro-kernels for ``level``, deduplicated (adaptive ones come later)."""
    if level not in LEVELS:
        raise InvalidInputError(f"level must be one of {', '.join(LEVELS)}, got {level!r}")
    rng = np.random.default_rng(seed)
    n_random, n_prior, per_space = (6, 6, 4) if level == "quick" else (220, 160, 40)
    n_sequence = 2 if level == "quick" else 80
    n_slice = 1 if level == "quick" else 20
    n_pad = 1 if level == "quick" else 20
    pairs: list[tuple[Layer, str]] = [(s.layer(), "grid") for s in grid_kernels(level, max_macs=max_macs)]
    pairs += [(s.layer(), "random") for s in random_kernels(n_random, rng, max_macs=max_macs)]
    pairs += [(layer, "prior") for layer in prior_layers(n_prior, rng, archs_per_space=per_space, max_macs=max_macs)]
    # drawn last, so the image kernels of a seed stay what they were before transformer kernels existed
    pairs += [(s.layer(), "random") for s in random_sequence_kernels(n_sequence, rng, max_macs=max_macs)]
    pairs += [(s.layer(), "random") for s in random_slice_kernels(n_slice, rng, max_macs=max_macs)]  # last too
    pairs += [(s.layer(), "random") for s in random_pad_kernels(n_pad, rng, max_macs=max_macs)]  # and then pads
    return unique_kernel_items(pairs)
