"""Classic networks defined in-project as IR, for evaluating layer models on networks outside the NAS spaces.

=======================  ====================================================================================
``resnet18``             ResNet-18 (He et al. 2016), ImageNet stem (7×7/2 conv, 3×3/2 max pool), basic blocks
``resnet18_cifar``       ResNet-18 with the CIFAR stem (3×3/1 conv, no max pool), 32×32 input, 100 classes
``mobilenet_v2``         MobileNetV2 (Sandler et al. 2018), width 1.0, ReLU6, inverted residuals
``vgg11_bn_cifar``       VGG-11 with batch norm, CIFAR layout (conv stack, 512→classes linear head)
``vgg16_bn_cifar``       VGG-16 with batch norm, CIFAR layout
``vit_tiny_cifar``       a ViT-Tiny-sized vision transformer (Dosovitskiy et al. 2021; width 192, 3 heads, MLP 768)
                         on 4×4 patches of a 32×32 input (64 tokens), 6 pre-norm blocks with a packed qkv
                         projection (timm's layout), a learned positional embedding, mean-pooled tokens
=======================  ====================================================================================

``classic_network(name, resolution=None, batch_size=1)`` builds one; the resolution defaults to the network's usual
input (224 for the ImageNet ones, 32 for the CIFAR ones). Convolutions have no bias where batch norm follows, as in
torchvision; every activation is its own layer.
"""

from __future__ import annotations

from typing import Callable

from nas_latency.errors import NotFoundError
from nas_latency.ir import Network, NetworkBuilder, OpKind


def _conv_bn(b: NetworkBuilder, x: str, cout: int, k: int, s: int, *, groups: int = 1, act: OpKind | None = OpKind.RELU,
             prefix: str) -> str:
    x = b.conv(x, cout, k, stride=s, padding=(k - 1) // 2, groups=groups, bias=False, name=f"{prefix}.conv")
    x = b.batch_norm(x, name=f"{prefix}.bn")
    if act is not None:
        x = b.activation(x, act, name=f"{prefix}.act")
    return x


def _basic_block(b: NetworkBuilder, x: str, cout: int, stride: int, prefix: str) -> str:
    cin = b.shape(x)[1]
    y = _conv_bn(b, x, cout, 3, stride, prefix=f"{prefix}.1")
    y = _conv_bn(b, y, cout, 3, 1, act=None, prefix=f"{prefix}.2")
    shortcut = x
    if stride != 1 or cin != cout:
        shortcut = _conv_bn(b, x, cout, 1, stride, act=None, prefix=f"{prefix}.down")
    y = b.add(y, shortcut, name=f"{prefix}.add")
    return b.relu(y, name=f"{prefix}.relu")


def _head(b: NetworkBuilder, x: str, classes: int) -> str:
    x = b.global_avg_pool(x, name="pool")
    x = b.flatten(x, name="flatten")
    return b.linear(x, classes, name="fc")


def resnet18(resolution: int = 224, batch_size: int = 1, *, cifar: bool = False) -> Network:
    b = NetworkBuilder("resnet18_cifar" if cifar else "resnet18")
    x = b.input((batch_size, 3, resolution, resolution))
    if cifar:
        x = _conv_bn(b, x, 64, 3, 1, prefix="stem")
    else:
        x = _conv_bn(b, x, 64, 7, 2, prefix="stem")
        x = b.max_pool(x, 3, stride=2, padding=1, name="stem.pool")
    for stage, (channels, stride) in enumerate(((64, 1), (128, 2), (256, 2), (512, 2))):
        for block in range(2):
            x = _basic_block(b, x, channels, stride if block == 0 else 1, f"layer{stage + 1}.{block}")
    return b.build([_head(b, x, 100 if cifar else 1000)])


def mobilenet_v2(resolution: int = 224, batch_size: int = 1) -> Network:
    b = NetworkBuilder("mobilenet_v2")
    x = b.input((batch_size, 3, resolution, resolution))
    x = _conv_bn(b, x, 32, 3, 2, act=OpKind.RELU6, prefix="stem")
    settings = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                (6, 320, 1, 1))
    index = 0
    for expansion, cout, repeats, first_stride in settings:
        for r in range(repeats):
            stride = first_stride if r == 0 else 1
            cin = b.shape(x)[1]
            prefix = f"features.{index}"
            y = x
            if expansion != 1:
                y = _conv_bn(b, y, cin * expansion, 1, 1, act=OpKind.RELU6, prefix=f"{prefix}.expand")
            mid = b.shape(y)[1]
            y = _conv_bn(b, y, mid, 3, stride, groups=mid, act=OpKind.RELU6, prefix=f"{prefix}.dw")
            y = _conv_bn(b, y, cout, 1, 1, act=None, prefix=f"{prefix}.project")
            if stride == 1 and cin == cout:
                y = b.add(y, x, name=f"{prefix}.add")
            x = y
            index += 1
    x = _conv_bn(b, x, 1280, 1, 1, act=OpKind.RELU6, prefix="last")
    return b.build([_head(b, x, 1000)])


_VGG = {
    "vgg11": (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    "vgg16": (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"),
}


def vgg_bn_cifar(depth: str = "vgg11", resolution: int = 32, batch_size: int = 1, classes: int = 100) -> Network:
    b = NetworkBuilder(f"{depth}_bn_cifar")
    x = b.input((batch_size, 3, resolution, resolution))
    conv = pool = 0
    for item in _VGG[depth]:
        if item == "M":
            pool += 1
            x = b.max_pool(x, 2, stride=2, name=f"pool{pool}")
        else:
            conv += 1
            x = _conv_bn(b, x, int(item), 3, 1, prefix=f"conv{conv}")
    x = b.flatten(x, name="flatten")
    return b.build([b.linear(x, classes, name="fc")])


def _vit_block(b: NetworkBuilder, x: str, heads: int, mlp: int, prefix: str) -> str:
    """A pre-norm transformer block on ``(N, tokens, width)``: attention with a packed qkv projection, an MLP."""
    n, tokens, width = b.shape(x)
    head = width // heads
    y = b.layer_norm(x, name=f"{prefix}.norm1")
    qkv = b.reshape(b.linear(y, 3 * width, name=f"{prefix}.attn.qkv"), (n, tokens, 3, heads, head),
                    name=f"{prefix}.attn.heads")
    qkv = b.transpose(qkv, (2, 0, 3, 1, 4), name=f"{prefix}.attn.split")  # (3, N, heads, tokens, head)
    q, k, v = (b.select(qkv, 0, name=f"{prefix}.attn.{part}") for part in "qkv")
    scores = b.matmul(q, b.transpose(k, (0, 1, 3, 2), name=f"{prefix}.attn.k_t"), name=f"{prefix}.attn.qk")
    weights = b.activation(b.scale(scores, name=f"{prefix}.attn.scale"), OpKind.SOFTMAX, name=f"{prefix}.attn.softmax")
    context = b.transpose(b.matmul(weights, v, name=f"{prefix}.attn.av"), (0, 2, 1, 3), name=f"{prefix}.attn.merge")
    context = b.reshape(context, (n, tokens, width), name=f"{prefix}.attn.flat")
    x = b.add(x, b.linear(context, width, name=f"{prefix}.attn.proj"), name=f"{prefix}.add1")
    y = b.layer_norm(x, name=f"{prefix}.norm2")
    y = b.activation(b.linear(y, mlp, name=f"{prefix}.mlp.fc1"), OpKind.GELU, name=f"{prefix}.mlp.act")
    return b.add(x, b.linear(y, width, name=f"{prefix}.mlp.fc2"), name=f"{prefix}.add2")


def vit_cifar(resolution: int = 32, batch_size: int = 1, *, patch: int = 4, width: int = 192, depth: int = 6,
              heads: int = 3, mlp: int = 768, classes: int = 100) -> Network:
    b = NetworkBuilder("vit_tiny_cifar")
    x = b.input((batch_size, 3, resolution, resolution))
    x = b.conv(x, width, patch, stride=patch, bias=True, name="patch_embed")
    tokens = b.shape(x)[2] * b.shape(x)[3]
    x = b.transpose(b.reshape(x, (batch_size, width, tokens), name="patches"), (0, 2, 1), name="tokens")
    x = b.scale(x, name="pos_embed")  # + a learned positional embedding: a constant operand
    for block in range(depth):
        x = _vit_block(b, x, heads, mlp, f"blocks.{block}")
    x = b.layer_norm(x, name="norm")
    x = b.reshape(b.transpose(x, (0, 2, 1), name="channels"), (batch_size, width, tokens, 1), name="grid")
    return b.build([_head(b, x, classes)])


CLASSIC_NETWORKS: dict[str, tuple[int, Callable[[int, int], Network]]] = {
    "resnet18": (224, lambda r, n: resnet18(r, n)),
    "resnet18_cifar": (32, lambda r, n: resnet18(r, n, cifar=True)),
    "mobilenet_v2": (224, lambda r, n: mobilenet_v2(r, n)),
    "vgg11_bn_cifar": (32, lambda r, n: vgg_bn_cifar("vgg11", r, n)),
    "vgg16_bn_cifar": (32, lambda r, n: vgg_bn_cifar("vgg16", r, n)),
    "vit_tiny_cifar": (32, lambda r, n: vit_cifar(r, n)),
}


def classic_network(name: str, resolution: int | None = None, batch_size: int = 1) -> Network:
    """One of :data:`CLASSIC_NETWORKS`, named ``name@resolution`` when the resolution is not the default."""
    try:
        default, build = CLASSIC_NETWORKS[name]
    except KeyError:
        raise NotFoundError(f"unknown classic network {name!r}; known: {', '.join(CLASSIC_NETWORKS)}") from None
    network = build(resolution or default, batch_size)
    if resolution and resolution != default:
        network = Network(f"{name}@{resolution}", network.inputs, network.layers, network.outputs)
    return network
