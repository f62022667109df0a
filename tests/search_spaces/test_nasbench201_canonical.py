"""NAS-Bench-201 dead edges, dead cells and isomorphism classes."""

from __future__ import annotations

import itertools

import pytest

from nas_latency.data import load_table
from search_spaces.nasbench201 import (
    OPS,
    canonical_cell,
    cell_key,
    computation_key,
    dead_edges,
    format_arch,
    is_dead_cell,
    isomorphism_classes,
    live_edges,
    prune_dead,
)

ALL = [format_arch(ops) for ops in itertools.product(OPS, repeat=6)]


def test_nb201_convention_gives_the_published_6466_unique_cells() -> None:
    assert len({cell_key(a) for a in ALL}) == 6466
    reps = {canonical_cell(a) for a in ALL}
    assert len(reps) == 6466
    assert all(canonical_cell(r) == r for r in reps)  # a representative represents itself
    classes = isomorphism_classes()
    assert len(classes) == 6466 and sum(len(m) for m in classes.values()) == 15625
    assert all(rep in members for rep, members in classes.items())


def test_representative_prefers_none_on_dead_edges() -> None:
    arch = "|nor_conv_3x3~0|+|avg_pool_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|avg_pool_3x3~1|none~2|"
    assert canonical_cell(arch) == "|nor_conv_3x3~0|+|none~0|none~1|+|nor_conv_3x3~0|avg_pool_3x3~1|none~2|"
    assert cell_key(arch) == cell_key(canonical_cell(arch))


def test_isomorphic_cells_share_a_class() -> None:
    # node 1 is a skip of the input, so conv and pool may trade edges into node 3
    a = "|skip_connect~0|+|none~0|none~1|+|nor_conv_3x3~0|avg_pool_3x3~1|none~2|"
    b = "|skip_connect~0|+|none~0|none~1|+|avg_pool_3x3~0|nor_conv_3x3~1|none~2|"
    assert canonical_cell(a) == canonical_cell(b)
    assert computation_key(a) == computation_key(b)
    # skip is identity: a chain of skips is the direct edge
    c = "|skip_connect~0|+|none~0|skip_connect~1|+|none~0|none~1|nor_conv_1x1~2|"
    d = "|none~0|+|skip_connect~0|none~1|+|none~0|none~1|nor_conv_1x1~2|"
    assert canonical_cell(c) == canonical_cell(d)
    assert computation_key(c) == computation_key(d)
    # different ops are different computations
    e = "|none~0|+|skip_connect~0|none~1|+|none~0|none~1|nor_conv_3x3~2|"
    assert canonical_cell(d) != canonical_cell(e) and computation_key(d) != computation_key(e)


def test_nb201_convention_keeps_zero_summands() -> None:
    # nodes 1 and 2 swap roles; node 2 = op(x) + 0 keeps a '#' term, so the NAS-Bench-201 keys differ although
    # the computations are the same
    a = "|nor_conv_3x3~0|+|avg_pool_3x3~0|none~1|+|none~0|skip_connect~1|skip_connect~2|"
    b = "|avg_pool_3x3~0|+|nor_conv_3x3~0|none~1|+|none~0|skip_connect~1|skip_connect~2|"
    assert cell_key(a) != cell_key(b)
    assert computation_key(a) == computation_key(b)


def test_exact_computation_key_tells_a_shared_result_from_two_applications() -> None:
    # x1 = conv(x); out = x1 + conv(x1)  (2 convs)   vs   out = conv'(x) + conv(conv(x))  (3 convs)
    shared = "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|none~0|skip_connect~1|skip_connect~2|"
    separate = "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|nor_conv_3x3~0|none~1|skip_connect~2|"
    assert cell_key(shared) == cell_key(separate)  # the NAS-Bench-201 convention merges them
    assert computation_key(shared) != computation_key(separate)


def test_exact_computation_classes() -> None:
    keys = {a: computation_key(a) for a in ALL}
    assert len(set(keys.values())) == 5425
    assert all(keys[prune_dead(a)] == keys[a] for a in ALL)
    assert {a for a, k in keys.items() if k == "0"} == {a for a in ALL if is_dead_cell(a)}


def test_dead_edges_and_cells() -> None:
    arch = "|nor_conv_3x3~0|+|avg_pool_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|avg_pool_3x3~1|none~2|"
    assert dead_edges(arch) == ((0, 2), (1, 2))
    assert live_edges(arch) == ((0, 1), (0, 3), (1, 3))
    assert prune_dead(arch) == "|nor_conv_3x3~0|+|none~0|none~1|+|nor_conv_3x3~0|avg_pool_3x3~1|none~2|"
    dead = "|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|none~0|none~1|none~2|"
    assert is_dead_cell(dead)
    assert dead_edges(dead) == ((0, 1), (0, 2), (1, 2)) and live_edges(dead) == ()
    assert not is_dead_cell("|none~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|")
    assert dead_edges(format_arch(["nor_conv_1x1"] * 6)) == ()


def test_341_dead_cells() -> None:
    assert sum(is_dead_cell(a) for a in ALL) == 341


def test_pixel3_near_zero_latency_only_for_dead_cells() -> None:
    table = load_table("nb201_latency")
    dead = table["arch_string"].map(is_dead_cell)
    assert int(dead.sum()) == 341
    assert table.loc[~dead, "pixel3"].min() > 1.0  # every live cell costs over 1 ms
    near_zero = table["pixel3"] < 0.1
    assert bool(dead[near_zero].all())  # ...so near-zero latency means a dead cell
    assert int(near_zero.sum()) >= 200  # most (not all) dead cells were dropped by the pixel3 pipeline


@pytest.mark.parametrize("fn", [dead_edges, is_dead_cell, canonical_cell, computation_key, cell_key])
def test_invalid_strings_are_rejected(fn: object) -> None:
    from nas_latency.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="nasbench201"):
        fn("|none~0|")  # type: ignore[operator]


# ---- twins: the same network under two strings -------------------------------------------------------------
def _swap_branch_keys(key: str) -> str:
    swapped = {"edge_0_1": "edge_0_2", "edge_0_2": "edge_0_1", "edge_1_3": "edge_2_3", "edge_2_3": "edge_1_3"}
    return ".".join(swapped.get(part, part) for part in key.split("."))


@pytest.mark.parametrize("arch", [
    "|nor_conv_3x3~0|+|avg_pool_3x3~0|none~1|+|skip_connect~0|nor_conv_1x1~1|nor_conv_3x3~2|",
    "|nor_conv_1x1~0|+|none~0|none~1|+|none~0|nor_conv_3x3~1|nor_conv_3x3~2|",  # 2→3 is dead: its conv runs on zeros
])
def test_a_twin_is_the_same_torch_network_with_its_branches_renamed(arch: str) -> None:
    import torch

    from search_spaces.nasbench201 import branch_swap_twin
    from search_spaces.nasbench201.torch_builder import build_torch

    twin = branch_swap_twin(arch)
    assert twin is not None and twin != arch and branch_swap_twin(twin) == arch
    first, second = build_torch(arch, seed=3), build_torch(twin, seed=4)
    second.load_state_dict({_swap_branch_keys(k): v for k, v in first.state_dict().items()})
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.allclose(first(x), second(x), atol=1e-5)
    # the same operations: the same IR layers, whatever their order
    from search_spaces.nasbench201 import build_ir

    def layers(a: str) -> list[tuple[str, int, int]]:
        graph = build_ir(a)
        return sorted((layer.op, layer.macs, layer.params) for layer in graph.layers)

    assert layers(arch) == layers(twin)


def test_1500_twin_pairs_and_none_where_edge_1_2_computes_or_the_branches_are_equal() -> None:
    from search_spaces.nasbench201 import branch_swap_twin

    twins = {arch: branch_swap_twin(arch) for arch in ALL}
    paired = [a for a, t in twins.items() if t is not None]
    assert len(paired) == 3000 and all(twins[twins[a]] == a for a in paired)  # an involution without fixed points
    assert twins["|nor_conv_3x3~0|+|avg_pool_3x3~0|skip_connect~1|+|none~0|nor_conv_1x1~1|none~2|"] is None
    assert twins["|nor_conv_3x3~0|+|nor_conv_3x3~0|none~1|+|none~0|skip_connect~1|skip_connect~2|"] is None
