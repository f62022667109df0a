"""Network construction checks: every error names the offending layer (or input)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from nas_latency.errors import InvalidInputError, NasLatencyError
from nas_latency.ir import Layer, Network, NetworkBuilder, OpKind, TensorSpec

INPUT = TensorSpec("x", (1, 8, 8, 8))


def _conv(name: str = "c", src: str = "x", **overrides: object) -> Layer:
    layer = Layer(
        name=name,
        op=OpKind.CONV,
        inputs=(src,),
        input_shapes=((1, 8, 8, 8),),
        output_shape=(1, 8, 8, 8),
        kernel=(3, 3),
        stride=(1, 1),
        padding=(1, 1, 1, 1),
        dilation=(1, 1),
    )
    return replace(layer, **overrides)  # type: ignore[arg-type]


def _relu(name: str, src: str, shape: tuple[int, ...] = (1, 8, 8, 8)) -> Layer:
    return Layer(name=name, op=OpKind.RELU, inputs=(src,), input_shapes=(shape,), output_shape=shape)


def _network(*layers: Layer, outputs: tuple[str, ...] | None = None) -> Network:
    return Network("net", (INPUT,), tuple(layers), outputs or (layers[-1].name,))


def test_valid_network_and_accessors() -> None:
    net = _network(_conv("c"), _relu("r", "c"))
    assert net.layer("r").inputs == ("c",)
    assert net.consumers() == {"x": ["c"], "c": ["r"], "r": []}
    assert [layer.name for layer in net] == ["c", "r"]
    assert net.batch_size == 1


@pytest.mark.parametrize(
    ("layers", "outputs", "pattern"),
    [
        ((_conv("c"), _relu("c", "c")), None, r"duplicate layer name 'c'"),
        ((_conv("x"),), None, r"duplicate layer name 'x'"),  # a layer may not shadow an input
        ((_relu("r", "nowhere"),), None, r"layer 'r' reads 'nowhere', which is not an input or an earlier layer"),
        ((_relu("r", "c"), _conv("c")), None, r"layer 'r' reads 'c'"),  # not topologically ordered
        ((_relu("r", "x", (1, 8, 4, 4)),), None, r"layer 'r' expects \(1, 8, 4, 4\) from 'x', which produces"),
        ((_conv("c", groups=3),), None, r"layer 'c' \(conv\): groups=3 must divide in_channels=8"),
        ((_conv("c", groups=0),), None, r"layer 'c' \(conv\): groups=0"),
        ((_conv("c", groups=8),), None, r"layer 'c' \(conv\): groups=8 makes this a depthwise_conv"),
        ((_conv("c", op=OpKind.DEPTHWISE_CONV),), None, r"layer 'c' \(depthwise_conv\): groups=1 makes this a conv"),
        ((_conv("c", kernel=None),), None, r"layer 'c' \(conv\): needs kernel, stride and padding"),
        ((_conv("c", stride=None),), None, r"layer 'c' \(conv\): needs kernel, stride and padding"),
        ((_conv("c", stride=(0, 1)),), None, r"layer 'c' \(conv\): kernel .* must be >= 1"),
        ((_conv("c", kernel=(0, 3)),), None, r"layer 'c' \(conv\): kernel .* must be >= 1"),
        ((_conv("c", dilation=(1, 0)),), None, r"layer 'c' \(conv\): .* must be >= 1"),
        ((_conv("c", padding=(0, -1, 0, 0)),), None, r"layer 'c' \(conv\): .* padding \(0, -1, 0, 0\) >= 0"),
        ((_conv("c", output_shape=(1, 8, 0, 8)),), None, r"layer 'c' \(conv\): bad shape \(1, 8, 0, 8\)"),
        ((_conv("c", inputs=("x", "x")),), None, r"layer 'c' \(conv\): 2 inputs but 1 input shapes"),
        ((_conv("c", inputs=(), input_shapes=()),), None, r"layer 'c' \(conv\): has no inputs"),
        (
            (Layer("p", OpKind.MAX_POOL, ("x",), ((1, 512),), (1, 512), kernel=(2, 2), stride=(2, 2), padding=(0,) * 4),),
            None,
            r"layer 'p' \(max_pool\): expects \(N, C, H, W\) input and output",
        ),
        ((_conv("c", output_shape=(1, 8, 7, 8)),), None, r"layer 'c' \(conv\): output shape \(1, 8, 7, 8\) does not follow"),
        (
            (Layer("l", OpKind.LINEAR, ("x",), ((1, 3, 8, 8),), (2, 3, 8, 4)),),
            None,
            r"layer 'l' \(linear\): output shape \(2, 3, 8, 4\) must keep the leading dimensions",
        ),
        ((_conv("c"),), ("missing",), r"output 'missing' is not a layer or input"),
        ((_conv("c"),), (), r"has no outputs"),
    ],
)
def test_validation_errors_name_the_layer(
    layers: tuple[Layer, ...], outputs: tuple[str, ...] | None, pattern: str
) -> None:
    with pytest.raises(InvalidInputError, match=pattern) as info:
        if outputs == ():
            Network("net", (INPUT,), layers, ())
        else:
            _network(*layers, outputs=outputs)
    assert info.value.reason == "INVALID_INPUT"
    assert isinstance(info.value, NasLatencyError)


def test_pool_without_kernel_is_rejected() -> None:
    pool = Layer("p", OpKind.AVG_POOL, ("x",), ((1, 8, 8, 8),), (1, 8, 4, 4), stride=(2, 2), padding=(0, 0, 0, 0))
    with pytest.raises(InvalidInputError, match=r"layer 'p' \(avg_pool\): needs kernel"):
        _network(pool)


def test_input_errors() -> None:
    with pytest.raises(InvalidInputError, match="has no inputs"):
        Network("net", (), (), ("x",))
    with pytest.raises(InvalidInputError, match="duplicate input name 'x'"):
        Network("net", (INPUT, INPUT), (), ("x",))
    for shape in ((1, -3, 8, 8), (1, 0), ()):
        with pytest.raises(InvalidInputError, match=r"input 'y' has bad shape"):
            Network("net", (TensorSpec("y", shape),), (), ("y",))


def test_an_input_may_be_an_output() -> None:
    assert Network("net", (INPUT,), (), ("x",)).outputs == ("x",)


@pytest.mark.parametrize(
    ("call", "pattern"),
    [
        (lambda b, x: b.conv(x, 8, 3, stride=0), r"conv on 'x': kernel \(3, 3\), stride \(0, 0\) .* must be >= 1"),
        (lambda b, x: b.conv(x, 8, 0), r"conv on 'x': kernel \(0, 0\)"),
        (lambda b, x: b.conv(x, 8, 3, dilation=(0, 1)), r"conv on 'x': .*dilation \(0, 1\)"),
        (lambda b, x: b.conv(x, 8, 3, padding=-1), r"conv on 'x': .*padding \(-1, -1, -1, -1\) >= 0"),
        (lambda b, x: b.max_pool(x, 2, stride=0), r"max_pool on 'x': .*stride \(0, 0\)"),
        (lambda b, x: b.avg_pool(x, (2, 0)), r"avg_pool on 'x': kernel \(2, 0\)"),
    ],
)
def test_builder_rejects_bad_windows(call, pattern: str) -> None:  # type: ignore[no-untyped-def]
    b = NetworkBuilder("net")
    x = b.input((1, 8, 8, 8), name="x")
    with pytest.raises(InvalidInputError, match=pattern):
        call(b, x)


def test_builder_kernel_larger_than_input_names_the_layer() -> None:
    b = NetworkBuilder("net")
    x = b.input((1, 3, 4, 4), name="x")
    b.conv(x, 8, 7, name="big")
    with pytest.raises(InvalidInputError, match=r"layer 'big' \(conv\): bad shape \(1, 8, -2, -2\)"):
        b.build()


def test_builder_rejects_bad_input_shape_at_build() -> None:
    b = NetworkBuilder("net")
    b.input((1, -3, 8, 8), name="x")
    with pytest.raises(InvalidInputError, match=r"input 'x' has bad shape"):
        b.build(["x"])
