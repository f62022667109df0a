"""NAS-Bench-201 networks: the IR built from strings against the published figures and the torch module."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch
import torch.fx
from torch import nn

from nas_latency.errors import InvalidInputError
from nas_latency.frontends.torch_modules import Zero
from nas_latency.ir import IRFeaturizer, OpKind
from search_spaces.nasbench201 import NasBench201Space, build_ir, format_arch, is_dead_cell
from search_spaces.nasbench201.torch_builder import build_torch

ALL_CONV = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
ALL_NONE = format_arch(["none"] * 6)
MIXED = "|nor_conv_3x3~0|+|none~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_1x1~1|skip_connect~2|"
# NAS-Bench-201's figure for the all-3x3-conv cell is 220.11 MFLOPs, counted as multiply-adds.
ALL_CONV_MACS = 220_119_680
ALL_CONV_PARAMS = 1_531_546


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_all_conv_network_matches_the_published_parameter_count() -> None:
    assert build_ir(ALL_CONV).params == ALL_CONV_PARAMS
    assert n_params(build_torch(ALL_CONV)) == ALL_CONV_PARAMS


def test_all_conv_network_matches_the_published_macs() -> None:
    macs = build_ir(ALL_CONV).macs
    assert macs == ALL_CONV_MACS
    assert abs(macs - 220e6) / 220e6 < 0.01


def test_skeleton_shapes_and_attributes() -> None:
    net = build_ir(MIXED)
    assert net.name == MIXED
    assert net.inputs[0].shape == (1, 3, 32, 32)
    assert net.layer("stem.conv").output_shape == (1, 16, 32, 32)
    assert net.layer("cells.4.node_3.add_2").output_shape == (1, 16, 32, 32)
    assert net.layer("cells.5.conv_a.conv").stride == (2, 2)
    assert net.layer("cells.5.add").output_shape == (1, 32, 16, 16)
    assert net.layer("cells.11.add").output_shape == (1, 64, 8, 8)
    assert net.layer("cells.16.edge_0_1.bn").output_shape == (1, 64, 8, 8)
    assert net.layer("classifier").output_shape == (1, 10) and net.layer("classifier").bias
    assert net.outputs == ("classifier",)
    short = net.layer("cells.5.downsample.pool")
    assert (short.kernel, short.stride, short.padding, short.count_include_pad) == ((2, 2), (2, 2), (0, 0, 0, 0), True)
    cell_pool = net.layer("cells.0.edge_1_2")
    assert cell_pool.op is OpKind.AVG_POOL
    assert (cell_pool.kernel, cell_pool.stride, cell_pool.padding) == ((3, 3), (1, 1), (1, 1, 1, 1))
    assert cell_pool.count_include_pad is False
    assert net.layer("cells.0.edge_0_2").op is OpKind.ZERO
    assert net.layer("cells.0.edge_0_3").op is OpKind.IDENTITY
    assert net.layer("cells.0.edge_1_3.conv").kernel == (1, 1)
    assert net.layer("cells.0.edge_1_3.conv").padding == (0, 0, 0, 0)
    assert net.layer("cells.0.edge_0_1.conv").padding == (1, 1, 1, 1)
    assert all(not layer.bias for layer in net if layer.op is OpKind.CONV)
    assert all(layer.affine for layer in net if layer.op is OpKind.BATCH_NORM)
    # node sums: binary adds in edge order, ((e0 + e1) + e2)
    assert net.layer("cells.0.node_3.add_1").inputs == ("cells.0.edge_0_3", "cells.0.edge_1_3.bn")
    assert net.layer("cells.0.node_3.add_2").inputs == ("cells.0.node_3.add_1", "cells.0.edge_2_3")
    assert net.layer("cells.1.edge_0_1.relu").inputs == ("cells.0.node_3.add_2",)
    counts = net.op_counts()
    assert counts[OpKind.ADD] == 15 * 3 + 2
    assert counts[OpKind.ZERO] == 15 and counts[OpKind.IDENTITY] == 30


def test_every_tensor_is_consumed() -> None:
    net = build_ir(ALL_NONE)
    unused = [name for name, users in net.consumers().items() if not users and name not in net.outputs]
    assert unused == []


def test_batch_size_and_classes_are_parameters() -> None:
    small, big = build_ir(MIXED), build_ir(MIXED, num_classes=100, batch_size=32)
    assert big.inputs[0].shape == (32, 3, 32, 32)
    assert big.layer("classifier").output_shape == (32, 100)
    assert big.params - small.params == 90 * 64 + 90
    assert big.macs == 32 * small.macs + 32 * 64 * 90
    with pytest.raises(InvalidInputError, match="batch_size must be a positive integer"):
        build_ir(MIXED, batch_size=0)


def test_ir_and_torch_parameters_agree_on_random_archs() -> None:
    space = NasBench201Space()
    for arch in space.sample(20, seed=11) + [ALL_NONE, MIXED]:
        assert build_ir(arch).params == n_params(build_torch(arch)), arch


def test_torch_module_runs_in_eval_mode_and_is_seeded() -> None:
    module = build_torch(MIXED, seed=3)
    assert not module.training
    x = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = module(x)
        again = build_torch(MIXED, seed=3)(x)
        other = build_torch(MIXED, seed=4)(x)
    assert out.shape == (1, 10)
    assert torch.equal(out, again)
    assert not torch.equal(out, other)
    assert NasBench201Space().to_torch(MIXED)(x).shape == (1, 10)


def test_torch_leaf_modules_are_named_like_the_ir_layers() -> None:
    module = build_torch(MIXED)
    leaves = {name: m for name, m in module.named_modules() if not list(m.children()) and name}
    allowed = (nn.Conv2d, nn.BatchNorm2d, nn.ReLU, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.Flatten, nn.Linear,
               nn.Identity, Zero)
    assert all(isinstance(m, allowed) for m in leaves.values())
    assert all(not m.inplace for m in leaves.values() if isinstance(m, nn.ReLU))
    assert all(m.affine for m in leaves.values() if isinstance(m, nn.BatchNorm2d))
    net = build_ir(MIXED)
    module_layers = {layer.name for layer in net if layer.op is not OpKind.ADD}
    assert set(leaves) == module_layers


class _Tracer(torch.fx.Tracer):
    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return isinstance(m, Zero) or super().is_leaf_module(m, qualname)


@pytest.mark.parametrize("arch", [MIXED, ALL_NONE])
def test_fx_trace_has_one_node_per_ir_layer(arch: str) -> None:
    graph = _Tracer().trace(build_torch(arch))
    calls = [n for n in graph.nodes if n.op in ("call_module", "call_function", "call_method")]
    kinds = Counter("add" if n.op != "call_module" else "module" for n in calls)
    net = build_ir(arch)
    assert kinds["add"] == net.op_counts()[OpKind.ADD]
    assert len(calls) == len(net)
    assert [n.target for n in calls if n.op == "call_module"] == [l.name for l in net if l.op is not OpKind.ADD]


def test_fast_ir_features_equal_the_generic_path() -> None:
    space = NasBench201Space()
    dead = [a for a in space.measured_archs() if is_dead_cell(a)][:5]
    archs = space.sample(50, seed=5) + [ALL_NONE, ALL_CONV, MIXED, format_arch(["skip_connect"] * 6)] + dead
    generic = IRFeaturizer().transform([space.to_ir(a) for a in archs]).values
    assert np.array_equal(space.ir_features(archs), generic)


def test_fast_ir_features_follow_batch_size_and_classes() -> None:
    space = NasBench201Space(num_classes=100, batch_size=32)
    archs = space.sample(4, seed=2) + [ALL_NONE]
    generic = IRFeaturizer().transform([space.to_ir(a) for a in archs]).values
    assert np.array_equal(space.ir_features(archs), generic)
