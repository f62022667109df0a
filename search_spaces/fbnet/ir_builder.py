"""Build the IR of an FBNet network straight from its string (no torch).

Layer names are the module paths of :func:`search_spaces.fbnet.torch_builder.build_torch`
(``layers.3.conv2``); the residual add of a block, which is not a module, is ``layers.K.add``, and an identity
``skip`` layer is ``layers.K`` itself. Decisions the published definition leaves implicit, as in HW-NAS-Bench's
``ConvBlock``/``Skip``/``ConvNorm``: convolutions have no bias, batch norms are affine, every ReLU is a
separate layer.

The piece functions (:func:`add_stem`, :func:`add_block`, :func:`add_head`) are public so that the fast
featurizer builds each block with exactly this code.
"""

from __future__ import annotations

from nas_latency.errors import InvalidInputError
from nas_latency.ir import Network, NetworkBuilder
from search_spaces.fbnet.codec import BLOCK_SPECS, BLOCKS, parse_arch
from search_spaces.fbnet.macro import (
    DEFAULT_BATCH_SIZE,
    HEAD_CHANNELS,
    INPUT_CHANNELS,
    INPUT_SIZE,
    NUM_CLASSES,
    SLOTS,
    STEM_CHANNELS,
    LayerSlot,
)


def _conv_bn_relu(b: NetworkBuilder, src: str, out_channels: int, kernel: int, stride: int, prefix: str) -> str:
    """Conv k×k (pad (k−1)/2, no bias) → BatchNorm(affine) → ReLU: HW-NAS-Bench's ``ConvNorm``."""
    x = b.conv(src, out_channels, kernel, stride=stride, padding=(kernel - 1) // 2, bias=False, name=f"{prefix}.conv")
    x = b.batch_norm(x, affine=True, name=f"{prefix}.bn")
    return b.relu(x, name=f"{prefix}.relu")


def add_stem(b: NetworkBuilder, src: str) -> str:
    """Conv 3×3 3→16 stride 1 pad 1 → BN → ReLU."""
    return _conv_bn_relu(b, src, STEM_CHANNELS, 3, 1, "stem")


def add_block(b: NetworkBuilder, src: str, block: str, slot: LayerSlot) -> str:
    """Searchable layer ``slot`` computing ``block`` on ``src``; returns its output tensor."""
    prefix = slot.prefix
    c_in, c_out, stride = slot.in_channels, slot.out_channels, slot.stride
    if b.shape(src)[1] != c_in:
        raise InvalidInputError(f"{prefix}: expects {c_in} input channels, {src!r} has {b.shape(src)[1]}")
    if block == "skip":
        if slot.has_residual:
            return b.identity(src, name=prefix)
        return _conv_bn_relu(b, src, c_out, 1, stride, prefix)
    spec = BLOCK_SPECS.get(block)
    if spec is None:
        raise InvalidInputError(f"{prefix}: unknown block {block!r}; known blocks: {', '.join(BLOCKS)}")
    mid = c_in * spec.expansion
    x = b.conv(src, mid, 1, groups=spec.groups, bias=False, name=f"{prefix}.conv1")
    x = b.batch_norm(x, affine=True, name=f"{prefix}.bn1")
    x = b.relu(x, name=f"{prefix}.relu1")
    if spec.groups > 1:
        x = b.channel_shuffle(x, spec.groups, name=f"{prefix}.shuffle")
    pad = (spec.kernel - 1) // 2
    x = b.conv(x, mid, spec.kernel, stride=stride, padding=pad, groups=mid, bias=False, name=f"{prefix}.conv2")
    x = b.batch_norm(x, affine=True, name=f"{prefix}.bn2")
    x = b.relu(x, name=f"{prefix}.relu2")
    x = b.conv(x, c_out, 1, groups=spec.groups, bias=False, name=f"{prefix}.conv3")
    x = b.batch_norm(x, affine=True, name=f"{prefix}.bn3")
    if slot.has_residual:
        x = b.add(x, src, name=f"{prefix}.add")
    return x


def add_head(b: NetworkBuilder, src: str, num_classes: int = NUM_CLASSES) -> str:
    """Conv 1×1 352→1504 → BN → ReLU, global average pool, flatten, Linear(1504→classes, bias)."""
    x = _conv_bn_relu(b, src, HEAD_CHANNELS, 1, 1, "header")
    x = b.global_avg_pool(x, name="avgpool")
    x = b.flatten(x, axis=1, name="flatten")
    return b.linear(x, num_classes, bias=True, name="fc")


def build_ir(arch: str, *, batch_size: int = DEFAULT_BATCH_SIZE) -> Network:
    """The whole CIFAR-100 network of ``arch`` as IR (input ``(batch_size, 3, 32, 32)``), named by the string."""
    blocks = parse_arch(arch)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidInputError(f"batch_size must be a positive integer, got {batch_size!r}")
    b = NetworkBuilder(arch)
    x = b.input((batch_size, INPUT_CHANNELS, INPUT_SIZE, INPUT_SIZE), name="input")
    x = add_stem(b, x)
    for slot, block in zip(SLOTS, blocks):
        x = add_block(b, x, block, slot)
    return b.build([add_head(b, x)])
