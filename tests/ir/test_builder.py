"""NetworkBuilder shape inference against real torch, and MAC / parameter / byte accounting by hand and vs torch."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nas_latency.errors import InvalidInputError
from nas_latency.ir import Network, NetworkBuilder, OpKind, conv_kind, numel


def _one(shape: tuple[int, ...], build) -> Network:  # type: ignore[no-untyped-def]
    b = NetworkBuilder("t")
    x = b.input(shape)
    build(b, x)
    return b.build()


def _torch_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# ---- convolution ------------------------------------------------------------------------------------------------
CONV_CASES = [
    # (input shape, out_channels, kernel, stride, padding, dilation, groups)
    ((1, 3, 32, 32), 16, 3, 1, 1, 1, 1),
    ((2, 8, 17, 23), 12, 3, 2, 1, 1, 1),
    ((1, 8, 15, 15), 8, 5, 2, 2, 1, 8),  # depthwise
    ((1, 8, 15, 15), 24, 3, 1, 1, 1, 8),  # depthwise with channel multiplier 3
    ((1, 12, 14, 10), 18, 3, 1, 0, 1, 3),  # grouped
    ((1, 4, 20, 20), 4, 3, 1, 2, 2, 1),  # dilated
    ((1, 4, 19, 21), 6, (1, 7), (2, 1), (0, 3), (1, 2), 2),  # rectangular everything
    ((3, 5, 9, 9), 7, 1, 3, 0, 1, 1),  # pointwise, stride larger than kernel
    ((1, 1, 8, 8), 4, 3, 1, 1, 1, 1),  # one input channel: plain conv, not depthwise
]


@pytest.mark.parametrize(("shape", "cout", "k", "s", "p", "d", "g"), CONV_CASES)
def test_conv_matches_torch(shape, cout, k, s, p, d, g) -> None:  # type: ignore[no-untyped-def]
    module = nn.Conv2d(shape[1], cout, k, stride=s, padding=p, dilation=d, groups=g, bias=True)
    with torch.no_grad():
        expected = tuple(module(torch.zeros(shape)).shape)
    net = _one(shape, lambda b, x: b.conv(x, cout, k, stride=s, padding=p, dilation=d, groups=g, bias=True))
    layer = net.layers[0]
    assert layer.output_shape == expected
    assert layer.params == _torch_params(module)
    assert layer.op is conv_kind(shape[1], cout, g)
    kh, kw = module.kernel_size
    assert layer.macs == numel(expected) * (shape[1] // g) * kh * kw


def test_conv_kind_classification() -> None:
    assert conv_kind(8, 16, 1) is OpKind.CONV
    assert conv_kind(8, 8, 8) is OpKind.DEPTHWISE_CONV
    assert conv_kind(8, 24, 8) is OpKind.DEPTHWISE_CONV
    assert conv_kind(8, 16, 4) is OpKind.GROUPED_CONV
    assert conv_kind(1, 4, 1) is OpKind.CONV


@pytest.mark.parametrize("pad", [(0, 1, 2, 0), (1, 0, 0, 1), (2, 3, 1, 0), (0, 0, 1, 1)])
def test_asymmetric_padding_matches_f_pad_then_conv(pad: tuple[int, int, int, int]) -> None:
    top, left, bottom, right = pad
    x = torch.zeros(1, 4, 13, 16)
    weight = torch.zeros(6, 4, 3, 3)
    expected = tuple(F.conv2d(F.pad(x, (left, right, top, bottom)), weight, stride=2).shape)
    net = _one((1, 4, 13, 16), lambda b, t: b.conv(t, 6, 3, stride=2, padding=pad))
    assert net.layers[0].output_shape == expected
    assert net.layers[0].padding == pad


def test_conv_hand_counts() -> None:
    net = _one((2, 3, 32, 32), lambda b, x: b.conv(x, 16, 3, padding=1))
    (layer,) = net.layers
    assert layer.output_shape == (2, 16, 32, 32)
    assert layer.macs == 2 * 16 * 32 * 32 * 3 * 3 * 3
    assert layer.params == 16 * 3 * 3 * 3
    dw = _one((1, 32, 8, 8), lambda b, x: b.conv(x, 64, 3, padding=1, groups=32, bias=True)).layers[0]
    assert dw.op is OpKind.DEPTHWISE_CONV
    assert dw.macs == 64 * 8 * 8 * 1 * 9
    assert dw.params == 64 * 9 + 64


def test_conv_errors() -> None:
    b = NetworkBuilder("bad")
    x = b.input((1, 6, 8, 8))
    with pytest.raises(InvalidInputError, match=r"groups=4 must divide in_channels=6"):
        b.conv(x, 8, 3, groups=4)
    with pytest.raises(InvalidInputError, match=r"groups=3 must divide .* out_channels=8"):
        b.conv(x, 8, 3, groups=3)
    with pytest.raises(InvalidInputError, match="kernel must be an int or a pair"):
        b.conv(x, 8, (3, 3, 3))  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="padding must be"):
        b.conv(x, 8, 3, padding=(1, 1, 1))  # type: ignore[arg-type]
    flat = b.flatten(x)
    with pytest.raises(InvalidInputError, match=r"conv needs an \(N, C, H, W\) input, 'flatten_1'"):
        b.conv(flat, 8, 3)
    with pytest.raises(InvalidInputError, match="no tensor named 'nope'"):
        b.conv("nope", 8, 3)


# ---- pooling ------------------------------------------------------------------------------------------------------
POOL_CASES = [
    # (input shape, kernel, stride, padding, ceil_mode)
    ((1, 4, 32, 32), 2, None, 0, False),
    ((1, 4, 32, 32), 3, 2, 1, False),
    ((1, 4, 7, 7), 2, 2, 0, True),  # ceil adds a partial window
    ((1, 4, 8, 8), 3, 2, 1, True),
    ((1, 4, 5, 5), 2, 2, 1, True),  # ceil: the last window would start in the trailing padding -> dropped
    ((1, 4, 6, 6), 3, 3, 1, True),
    ((1, 4, 10, 9), (3, 2), (2, 3), (1, 0), True),
    ((2, 3, 11, 11), 3, 2, 0, True),
]


@pytest.mark.parametrize(("shape", "k", "s", "p", "ceil"), POOL_CASES)
@pytest.mark.parametrize("kind", ["avg", "max"])
def test_window_pools_match_torch(shape, k, s, p, ceil, kind) -> None:  # type: ignore[no-untyped-def]
    if kind == "avg":
        module: nn.Module = nn.AvgPool2d(k, stride=s, padding=p, ceil_mode=ceil)
        net = _one(shape, lambda b, x: b.avg_pool(x, k, stride=s, padding=p, ceil_mode=ceil))
    else:
        module = nn.MaxPool2d(k, stride=s, padding=p, ceil_mode=ceil)
        net = _one(shape, lambda b, x: b.max_pool(x, k, stride=s, padding=p, ceil_mode=ceil))
    expected = tuple(module(torch.zeros(shape)).shape)
    (layer,) = net.layers
    assert layer.output_shape == expected
    assert layer.ceil_mode is ceil
    assert layer.macs == 0 and layer.params == 0


def test_ceil_mode_exhaustive_small_sizes() -> None:
    for size in range(1, 12):
        for k in (1, 2, 3):
            for s in (1, 2, 3):
                for p in range(0, k // 2 + 1):
                    if size + 2 * p < k:
                        continue
                    expected = nn.MaxPool2d(k, s, p, ceil_mode=True)(torch.zeros(1, 1, size, size)).shape
                    net = _one((1, 1, size, size), lambda b, x: b.max_pool(x, k, stride=s, padding=p, ceil_mode=True))
                    assert net.layers[0].output_shape == tuple(expected), (size, k, s, p)


def test_count_include_pad() -> None:
    b = NetworkBuilder("p")
    x = b.input((1, 4, 8, 8))
    default = b.avg_pool(x, 3, stride=1, padding=1)
    excluded = b.avg_pool(x, 3, stride=1, padding=1, count_include_pad=False)
    mx = b.max_pool(x, 3, stride=1, padding=1)
    net = b.build([default, excluded, mx])
    assert net.layer(default).count_include_pad is True  # torch's default
    assert net.layer(excluded).count_include_pad is False
    assert net.layer(mx).count_include_pad is False  # not meaningful for max pooling
    # the attribute never changes the shape
    assert net.layer(default).output_shape == net.layer(excluded).output_shape == (1, 4, 8, 8)
    assert tuple(nn.AvgPool2d(3, 1, 1, count_include_pad=False)(torch.zeros(1, 4, 8, 8)).shape) == (1, 4, 8, 8)


def test_pool_stride_defaults_to_kernel() -> None:
    layer = _one((1, 2, 9, 9), lambda b, x: b.avg_pool(x, 3)).layers[0]
    assert layer.stride == (3, 3)
    assert layer.output_shape == (1, 2, 3, 3)


def test_global_pools_match_torch() -> None:
    b = NetworkBuilder("g")
    x = b.input((2, 7, 5, 9))
    a = b.global_avg_pool(x)
    m = b.global_max_pool(x)
    net = b.build([a, m])
    expected = tuple(nn.AdaptiveAvgPool2d(1)(torch.zeros(2, 7, 5, 9)).shape)
    assert net.layer(a).output_shape == expected == (2, 7, 1, 1)
    assert net.layer(m).output_shape == tuple(nn.AdaptiveMaxPool2d(1)(torch.zeros(2, 7, 5, 9)).shape)
    assert net.layer(a).op is OpKind.GLOBAL_AVG_POOL and net.layer(m).op is OpKind.GLOBAL_MAX_POOL


# ---- linear, batch norm, flatten, concat, elementwise -----------------------------------------------------------
@pytest.mark.parametrize("shape", [(4, 20), (2, 5, 20)])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_matches_torch(shape: tuple[int, ...], bias: bool) -> None:
    module = nn.Linear(20, 10, bias=bias)
    with torch.no_grad():
        expected = tuple(module(torch.zeros(shape)).shape)
    (layer,) = _one(shape, lambda b, x: b.linear(x, 10, bias=bias)).layers
    assert layer.output_shape == expected
    assert layer.params == _torch_params(module)
    assert layer.macs == numel(expected) * 20


def test_linear_bias_defaults_to_true_like_torch() -> None:
    assert _one((1, 8), lambda b, x: b.linear(x, 3)).layers[0].params == _torch_params(nn.Linear(8, 3))


@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_params_match_torch(affine: bool) -> None:
    module = nn.BatchNorm2d(12, affine=affine)
    (layer,) = _one((2, 12, 5, 5), lambda b, x: b.batch_norm(x, affine=affine)).layers
    assert layer.params == _torch_params(module)  # running statistics are buffers, not parameters
    assert layer.output_shape == (2, 12, 5, 5)
    assert layer.macs == 0


@pytest.mark.parametrize("axis", [1, 2, 3])
def test_flatten_matches_torch(axis: int) -> None:
    (layer,) = _one((2, 3, 4, 5), lambda b, x: b.flatten(x, axis=axis)).layers
    assert layer.output_shape == tuple(torch.flatten(torch.zeros(2, 3, 4, 5), start_dim=axis).shape)


@pytest.mark.parametrize("axis", [1, 2, -1, 0])
def test_concat_matches_torch(axis: int) -> None:
    shapes = [(2, 3, 4, 5), (2, 3, 4, 5), (2, 3, 4, 5)]
    shapes = [tuple(d + i if j == axis % 4 else d for j, d in enumerate(s)) for i, s in enumerate(shapes)]
    b = NetworkBuilder("c")
    names = [b.input(s, name=f"in{i}") for i, s in enumerate(shapes)]
    out = b.concat(names, axis=axis)
    layer = b.build().layer(out)
    assert layer.output_shape == tuple(torch.cat([torch.zeros(s) for s in shapes], dim=axis).shape)
    assert layer.axis == axis % 4
    assert layer.input_shapes == tuple(shapes)


def test_concat_shape_mismatch() -> None:
    b = NetworkBuilder("c")
    x = b.input((1, 3, 4, 4), name="a")
    y = b.input((1, 3, 5, 4), name="b")
    with pytest.raises(InvalidInputError, match="concat of"):
        b.concat([x, y], axis=1)


@pytest.mark.parametrize(
    "shapes",
    [
        [(1, 8, 4, 4), (1, 8, 4, 4)],
        [(1, 8, 4, 4), (1, 8, 1, 1)],  # squeeze-and-excitation style scaling
        [(2, 8, 4, 4), (8, 1, 1)],  # lower rank operand
        [(4, 1), (1, 3)],
        [(1, 8, 4, 4), (1, 8, 4, 4), (1, 1, 4, 1)],  # three operands
    ],
)
@pytest.mark.parametrize("op", ["add", "mul"])
def test_elementwise_broadcasting_matches_torch(shapes: list[tuple[int, ...]], op: str) -> None:
    b = NetworkBuilder("e")
    names = [b.input(s, name=f"in{i}") for i, s in enumerate(shapes)]
    out = getattr(b, op)(*names)
    expected = torch.zeros(shapes[0])
    for s in shapes[1:]:
        expected = expected + torch.zeros(s)
    layer = b.build().layer(out)
    assert layer.output_shape == tuple(expected.shape)
    assert layer.op is OpKind(op)


def test_elementwise_errors() -> None:
    b = NetworkBuilder("e")
    x = b.input((1, 8, 4, 4), name="a")
    y = b.input((1, 4, 4, 4), name="b")
    with pytest.raises(InvalidInputError, match="do not broadcast"):
        b.add(x, y)
    with pytest.raises(InvalidInputError, match="at least two inputs"):
        b.mul(x)


def test_other_ops_shapes_and_errors() -> None:
    b = NetworkBuilder("o")
    x = b.input((1, 8, 4, 4))
    assert b.shape(b.channel_shuffle(x, 2)) == (1, 8, 4, 4)
    assert b.shape(b.reshape(x, (1, 2, 4, 16))) == (1, 2, 4, 16)
    assert b.shape(b.zero(x)) == (1, 8, 4, 4)
    assert b.shape(b.identity(x)) == (1, 8, 4, 4)
    sm = b.activation(b.flatten(x), OpKind.SOFTMAX)
    r = b.relu(x)
    net = b.build()
    assert net.layer(sm).axis == 1
    assert net.layer(r).axis is None
    with pytest.raises(InvalidInputError, match="groups=3 must be >= 2 and divide 8"):
        b.channel_shuffle(x, 3)
    with pytest.raises(InvalidInputError, match="cannot reshape"):
        b.reshape(x, (1, 100))
    with pytest.raises(InvalidInputError, match="conv is not an activation"):
        b.activation(x, OpKind.CONV)
    with pytest.raises(InvalidInputError, match="duplicate tensor name 'input'"):
        b.relu(x, name="input")
    with pytest.raises(InvalidInputError, match="duplicate tensor name 'input'"):
        b.input((1, 3), name="input")


def test_flatten_axis_counts_from_the_end_and_is_checked() -> None:
    b = NetworkBuilder("f")
    x = b.input((2, 3, 4, 5))
    last = b.flatten(x, axis=-1)
    assert b.shape(last) == tuple(torch.flatten(torch.zeros(2, 3, 4, 5), start_dim=-1).shape)
    assert b.build().layer(last).axis == 3
    with pytest.raises(InvalidInputError, match=r"flatten of \['input'\]: axis 4 is outside rank 4"):
        b.flatten(x, axis=4)
    with pytest.raises(InvalidInputError, match=r"softmax of \['input'\]: axis -5 is outside rank 4"):
        b.activation(x, OpKind.SOFTMAX, axis=-5)


# One set of shape rules: what the builder refuses to infer, a layer table that states it is refused for, and the
# reason each gives is the same words.
RULE_CASES = [
    # (build the offending layer, the layer as a table would state it, the reason)
    (lambda b, x, y: b.concat([x, y], axis=1),
     dict(op=OpKind.CONCAT, input_shapes=((1, 3, 4, 4), (1, 3, 5, 4)), output_shape=(1, 6, 4, 4), axis=1),
     r"inputs \[\(1, 3, 4, 4\), \(1, 3, 5, 4\)\] differ outside axis 1"),
    (lambda b, x, y: b.add(x, y),
     dict(op=OpKind.ADD, input_shapes=((1, 3, 4, 4), (1, 3, 5, 4)), output_shape=(1, 3, 4, 4)),
     r"input shapes \[\(1, 3, 4, 4\), \(1, 3, 5, 4\)\] do not broadcast"),
    (lambda b, x, y: b.channel_shuffle(x, 2),
     dict(op=OpKind.CHANNEL_SHUFFLE, input_shapes=((1, 3, 4, 4),), output_shape=(1, 3, 4, 4), groups=2),
     r"groups=2 must be >= 2 and divide 3, the channels of \(1, 3, 4, 4\)"),
    (lambda b, x, y: b.flatten(x, axis=7),
     dict(op=OpKind.FLATTEN, input_shapes=((1, 3, 4, 4),), output_shape=(1, 48), axis=7),
     r"axis 7 is outside rank 4"),
]


@pytest.mark.parametrize("build, stated, reason", RULE_CASES, ids=["concat", "add", "channel_shuffle", "flatten"])
def test_the_builder_and_a_stated_layer_break_a_shape_rule_in_the_same_words(  # type: ignore[no-untyped-def]
        build, stated, reason) -> None:
    from nas_latency.ir.network import Layer

    b = NetworkBuilder("r")
    x, y = b.input((1, 3, 4, 4), name="x"), b.input((1, 3, 5, 4), name="y")
    with pytest.raises(InvalidInputError, match=reason):
        build(b, x, y)
    inputs = ("x", "y")[: len(stated["input_shapes"])]
    with pytest.raises(InvalidInputError, match=r"layer 'bad' \(" + stated["op"].value + r"\): " + reason):
        Layer(name="bad", inputs=inputs, **stated).check()


def test_builder_names_and_outputs() -> None:
    b = NetworkBuilder("n")
    x = b.input((1, 3, 8, 8))
    c = b.conv(x, 4, 3, padding=1)
    r = b.relu(c, name="act")
    assert (c, r) == ("conv_1", "act")
    net = b.build()
    assert net.outputs == ("act",)
    assert [layer.name for layer in net] == ["conv_1", "act"]
    assert len(net) == 2 and net.batch_size == 1
    with pytest.raises(KeyError, match="no layer 'missing'"):
        net.layer("missing")
    with pytest.raises(InvalidInputError, match="has no layers"):
        NetworkBuilder("empty").build()


def test_add_layer_checks_producer_shapes() -> None:
    b = NetworkBuilder("a")
    x = b.input((1, 3, 8, 8))
    layer = b.build([x]).layers  # no layers yet
    assert layer == ()
    other = _one((1, 3, 8, 8), lambda bb, t: bb.relu(t, name="r")).layers[0]
    assert b.add_layer(other) == "r"
    with pytest.raises(InvalidInputError, match="duplicate tensor name 'r'"):
        b.add_layer(other)
    wrong = _one((1, 3, 9, 9), lambda bb, t: bb.relu(t, name="s")).layers[0]
    with pytest.raises(InvalidInputError, match=r"layer 's' expects \(1, 3, 9, 9\) from 'input'"):
        b.add_layer(wrong)


# ---- whole networks vs torch ---------------------------------------------------------------------------------------
def test_network_macs_and_params_match_torch_model() -> None:
    model = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1, bias=False),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.Conv2d(16, 16, 3, padding=1, groups=16, bias=False),
        nn.BatchNorm2d(16, affine=False),
        nn.Conv2d(16, 32, 1, bias=True),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(32, 10),
    )
    b = NetworkBuilder("m")
    t = b.input((1, 3, 16, 16))
    t = b.relu(b.batch_norm(b.conv(t, 16, 3, padding=1)))
    t = b.batch_norm(b.conv(t, 16, 3, padding=1, groups=16), affine=False)
    t = b.conv(t, 32, 1, bias=True)
    t = b.linear(b.flatten(b.global_avg_pool(t)), 10)
    net = b.build()
    with torch.no_grad():
        assert net.layers[-1].output_shape == tuple(model(torch.zeros(1, 3, 16, 16)).shape)
    assert net.params == _torch_params(model)
    assert net.macs == 16 * 16 * 16 * 3 * 9 + 16 * 16 * 16 * 9 + 32 * 16 * 16 * 16 + 10 * 32
    assert net.op_counts()[OpKind.BATCH_NORM] == 2


# ---- bytes and arithmetic intensity --------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype_bytes", [4, 2])
def test_bytes_and_arithmetic_intensity(dtype_bytes: int) -> None:
    b = NetworkBuilder("bytes")
    x = b.input((2, 3, 8, 8))
    c = b.conv(x, 4, 3, padding=1, bias=True)
    a = b.add(c, c)
    f = b.flatten(a)
    net = b.build()
    conv, add, flat = net.layer(c), net.layer(a), net.layer(f)
    conv_read = (2 * 3 * 8 * 8 + 4 * 3 * 9 + 4) * dtype_bytes
    conv_written = 2 * 4 * 8 * 8 * dtype_bytes
    assert conv.activation_bytes_read(dtype_bytes) == 2 * 3 * 8 * 8 * dtype_bytes
    assert conv.weight_bytes(dtype_bytes) == (4 * 3 * 9 + 4) * dtype_bytes
    assert conv.bytes_read(dtype_bytes) == conv_read
    assert conv.bytes_written(dtype_bytes) == conv_written
    assert conv.arithmetic_intensity(dtype_bytes) == pytest.approx(2 * conv.macs / (conv_read + conv_written))
    assert add.bytes_read(dtype_bytes) == 2 * 2 * 4 * 8 * 8 * dtype_bytes  # both operands are read
    assert add.bytes_written(dtype_bytes) == 2 * 4 * 8 * 8 * dtype_bytes
    assert add.arithmetic_intensity(dtype_bytes) == 0.0  # no MACs
    assert flat.bytes_read(dtype_bytes) == flat.bytes_written(dtype_bytes) == 0  # a view moves nothing
    assert flat.arithmetic_intensity(dtype_bytes) == 0.0
    total_read = conv_read + add.bytes_read(dtype_bytes)
    total_written = conv_written + add.bytes_written(dtype_bytes)
    assert net.bytes_read(dtype_bytes) == total_read
    assert net.bytes_written(dtype_bytes) == total_written
    assert net.arithmetic_intensity(dtype_bytes) == pytest.approx(2 * conv.macs / (total_read + total_written))


def test_default_dtype_is_float32_and_half_precision_halves_bytes() -> None:
    net = _one((1, 3, 8, 8), lambda b, x: b.conv(x, 8, 3))
    layer = net.layers[0]
    assert layer.bytes_read() == layer.bytes_read(4) == 2 * layer.bytes_read(2)
    assert net.bytes_written() == 2 * net.bytes_written(2)
    assert net.arithmetic_intensity(2) == pytest.approx(2 * net.arithmetic_intensity(4))


# ---- attention and transformer kinds ------------------------------------------------------------------------------
@pytest.mark.parametrize("left, right", [
    ((4, 8), (8, 3)),
    ((2, 5, 8), (2, 8, 7)),
    ((2, 4, 16, 8), (2, 4, 8, 16)),  # (batch, heads, tokens, width): attention scores
    ((2, 4, 16, 8), (8, 16)),  # a rank-2 right operand broadcasts over the batch dimensions
    ((1, 4, 16, 8), (3, 1, 8, 2)),
])
def test_matmul_shapes_and_macs_match_torch(left: tuple[int, ...], right: tuple[int, ...]) -> None:
    b = NetworkBuilder("m")
    out = b.matmul(b.input(left, name="a"), b.input(right, name="b"))
    layer = b.build().layer(out)
    expected = torch.matmul(torch.zeros(left), torch.zeros(right)).shape
    assert layer.output_shape == tuple(expected) and layer.op is OpKind.MATMUL
    assert layer.macs == numel(tuple(expected)) * left[-1]
    assert layer.params == 0 and layer.bytes_read() == 4 * (numel(left) + numel(right))


def test_matmul_errors() -> None:
    b = NetworkBuilder("m")
    x, y, v = b.input((2, 5, 8), name="x"), b.input((2, 7, 8), name="y"), b.input((8,), name="v")
    with pytest.raises(InvalidInputError, match=r"matmul of \['x', 'y'\]: inner dimensions differ"):
        b.matmul(x, y)
    with pytest.raises(InvalidInputError, match="needs operands of rank 2 or more"):
        b.matmul(x, v)
    z = b.input((3, 8, 4), name="z")
    with pytest.raises(InvalidInputError, match="batch dimensions of"):
        b.matmul(x, z)


@pytest.mark.parametrize("perm", [(0, 2, 1), (2, 0, 1), (0, 1, 2), (1, 0, 2)])
def test_transpose_shape_matches_torch_permute(perm: tuple[int, ...]) -> None:
    b = NetworkBuilder("t")
    out = b.transpose(b.input((2, 3, 5)), perm)
    layer = b.build().layer(out)
    assert layer.output_shape == tuple(torch.zeros(2, 3, 5).permute(*perm).shape)
    assert layer.bytes_read() == layer.bytes_written() == 4 * 30  # it moves the data, unlike a view
    with pytest.raises(InvalidInputError, match=r"\[0, 0, 1\] is not a permutation of the 3 dimensions"):
        b.transpose(b.input((2, 3, 5), name="again"), (0, 0, 1))


@pytest.mark.parametrize("shape, axis", [((2, 16, 64), -1), ((2, 16, 64), 1), ((2, 8, 4, 4), -3)])
@pytest.mark.parametrize("affine, bias", [(True, True), (True, False), (False, False)])
def test_layer_norm_params_match_torch(shape: tuple[int, ...], axis: int, affine: bool, bias: bool) -> None:
    b = NetworkBuilder("ln")
    out = b.layer_norm(b.input(shape), axis=axis, affine=affine, bias=bias)
    layer = b.build().layer(out)
    torch_norm = nn.LayerNorm(shape[axis:], elementwise_affine=affine, bias=bias)
    assert layer.params == _torch_params(torch_norm)
    assert layer.axis == axis % len(shape) and layer.output_shape == shape
    with pytest.raises(InvalidInputError, match="would normalize across the batch dimension"):
        b.layer_norm(b.input(shape, name="again"), axis=0)


def test_scale_keeps_the_shape_and_costs_one_pass() -> None:
    b = NetworkBuilder("s")
    out = b.scale(b.input((2, 16, 64)))
    layer = b.build().layer(out)
    assert layer.output_shape == (2, 16, 64) and layer.macs == 0 and layer.params == 0
    assert layer.bytes_read() == layer.bytes_written() == 4 * 2 * 16 * 64


def test_a_stated_transformer_layer_is_checked() -> None:
    from nas_latency.ir.network import Layer

    def check(**stated: object) -> None:
        Layer(name="bad", **stated).check()  # type: ignore[arg-type]

    with pytest.raises(InvalidInputError, match=r"layer 'bad' \(transpose\): output shape \(2, 4, 5\) is not a "
                                                r"permutation of input \(2, 3, 5\)"):
        check(op=OpKind.TRANSPOSE, inputs=("x",), input_shapes=((2, 3, 5),), output_shape=(2, 4, 5))
    with pytest.raises(InvalidInputError, match=r"layer 'bad' \(matmul\): output shape \(2, 5, 5\) does not follow"):
        check(op=OpKind.MATMUL, inputs=("x", "y"), input_shapes=((2, 5, 8), (2, 8, 7)), output_shape=(2, 5, 5))
    with pytest.raises(InvalidInputError, match=r"layer 'bad' \(matmul\): takes two inputs, got 1"):
        check(op=OpKind.MATMUL, inputs=("x",), input_shapes=((2, 5, 8),), output_shape=(2, 5, 8))
    with pytest.raises(InvalidInputError, match=r"layer 'bad' \(layer_norm\): axis 3 is outside rank 3"):
        check(op=OpKind.LAYER_NORM, inputs=("x",), input_shapes=((2, 5, 8),), output_shape=(2, 5, 8), axis=3)
    with pytest.raises(InvalidInputError, match=r"layer 'bad' \(scale\): output shape \(2, 5\) does not follow"):
        check(op=OpKind.SCALE, inputs=("x",), input_shapes=((2, 5, 8),), output_shape=(2, 5))


def test_slices_and_selects_match_torch_and_read_only_what_they_copy() -> None:
    b = NetworkBuilder("parts")
    x = b.input((3, 2, 4, 16, 8))  # packed q, k, v: (3, batch, heads, tokens, width)
    q = b.select(x, 0, name="q")
    half = b.slice(q, -1, 4, name="half")
    net = b.build([q, half])
    reference = torch.zeros(3, 2, 4, 16, 8)
    assert net.layer("q").output_shape == tuple(reference.unbind(0)[0].shape)
    assert net.layer("half").output_shape == tuple(reference[0].chunk(2, dim=-1)[0].shape)
    for layer in net:
        assert layer.op is OpKind.SLICE
        assert layer.bytes_read() == layer.bytes_written() == 4 * numel(layer.output_shape)
    with pytest.raises(InvalidInputError, match=r"slice of \['input'\]: size 9 of dimension 4 must be in 1..8"):
        b.slice(x, 4, 9)
    with pytest.raises(InvalidInputError, match="axis 5 is outside rank 5"):
        b.select(x, 5)


def test_a_stated_slice_is_a_part_of_its_input() -> None:
    from nas_latency.ir.network import Layer

    for out in ((2, 4, 16, 8), (1, 4, 16, 8), (3, 4, 16, 8), (3, 4, 16)):
        Layer(name="ok", op=OpKind.SLICE, inputs=("x",), input_shapes=((3, 4, 16, 8),), output_shape=out).check()
    for out in ((3, 5, 16, 8), (4, 16, 8, 1), (3, 4), (3, 4, 16, 8, 1)):
        with pytest.raises(InvalidInputError, match=r"layer 'bad' \(slice\): output shape .* is not a part of input"):
            Layer(name="bad", op=OpKind.SLICE, inputs=("x",), input_shapes=((3, 4, 16, 8),),
                  output_shape=out).check()


@pytest.mark.parametrize("padding", [1, (2, 3), (1, 2, 3, 4)])
def test_pad_shape_matches_torch_and_moves_the_data(padding: int | tuple[int, ...]) -> None:
    b = NetworkBuilder("pad")
    out = b.pad(b.input((1, 3, 8, 10)), padding)
    layer = b.build().layer(out)
    top, left, bottom, right = layer.padding
    expected = F.pad(torch.zeros(1, 3, 8, 10), (left, right, top, bottom), mode="reflect").shape
    assert layer.output_shape == tuple(expected) and layer.op is OpKind.PAD
    assert layer.bytes_read() == 4 * 3 * 8 * 10 and layer.bytes_written() == 4 * numel(layer.output_shape)
    with pytest.raises(InvalidInputError, match=r"pad of \['again'\]: padding \(0, 0, 0, 0\) must be"):
        b.pad(b.input((1, 3, 8, 10), name="again"), 0)
    with pytest.raises(InvalidInputError, match=r"expects an \(N, C, H, W\) input"):
        b.pad(b.input((1, 3, 8), name="flat"), 1)
