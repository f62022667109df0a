"""Small networks shared by the IR tests."""

from __future__ import annotations

import pytest

from nas_latency.ir import Network, NetworkBuilder, OpKind


def residual_net() -> Network:
    """A conv stem, a residual block with a depthwise conv and an SE-style gate, self-attention over the positions,
    a pooled head: every op group."""
    b = NetworkBuilder("residual")
    x = b.input((1, 3, 16, 16))
    stem = b.relu(b.batch_norm(b.conv(x, 8, 3, padding=1, name="stem")), name="stem_act")
    dw = b.conv(stem, 8, 3, padding=1, groups=8, name="dw")
    pw = b.conv(b.activation(dw, OpKind.RELU6), 8, 1, bias=True, name="pw")
    gate = b.activation(b.conv(b.global_avg_pool(pw), 8, 1, name="se"), OpKind.SIGMOID, name="gate")
    scaled = b.mul(pw, gate, name="scaled")
    res = b.add(stem, scaled, name="res")
    cat = b.concat([res, b.max_pool(stem, 3, stride=1, padding=1, name="mp")], name="cat")
    mix = b.channel_shuffle(b.conv(cat, 16, 1, groups=2, name="gconv"), 2, name="shuffle")
    # self-attention over the 256 positions as tokens of width 16, added back
    tokens = b.transpose(b.reshape(mix, (1, 16, 256), name="flat_hw"), (0, 2, 1), name="tokens")
    ln = b.layer_norm(tokens, name="ln")
    scores = b.matmul(b.scale(ln, name="q_scaled"), b.transpose(ln, (0, 2, 1), name="k_t"), name="qk")
    context = b.matmul(b.activation(scores, OpKind.SOFTMAX, name="attn"), ln, name="context")
    back = b.reshape(b.transpose(context, (0, 2, 1), name="channels"), (1, 16, 16, 16), name="unflat_hw")
    pooled = b.avg_pool(b.add(mix, back, name="att_res"), 2, ceil_mode=True, count_include_pad=False, name="ap")
    head = b.linear(b.flatten(b.global_avg_pool(b.identity(pooled, name="id"))), 10, name="fc")
    b.activation(head, OpKind.SOFTMAX, name="probs")
    return b.build()


@pytest.fixture
def net() -> Network:
    return residual_net()
