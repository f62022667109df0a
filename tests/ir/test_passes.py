"""Graph passes: identity removal, common-subexpression elimination, canonical form."""

from __future__ import annotations

from nas_latency.ir import (
    Network,
    NetworkBuilder,
    OpKind,
    canonicalize,
    eliminate_common_subexpressions,
    fuse_transposes,
    network_to_json,
    remove_identities,
    structure_key,
)


def test_remove_identities_rewires_consumers_and_outputs() -> None:
    b = NetworkBuilder("ids")
    x = b.input((1, 4, 8, 8))
    i1 = b.identity(x, name="i1")
    i2 = b.identity(i1, name="i2")  # a chain of identities
    r = b.relu(i2, name="r")
    i3 = b.identity(r, name="i3")
    a = b.add(i3, i1, name="a")
    net = b.build([a, i3, i2])
    before = network_to_json(net)
    out = remove_identities(net)
    assert [layer.name for layer in out] == ["r", "a"]
    assert out.layer("r").inputs == ("input",)
    assert out.layer("a").inputs == ("r", "input")
    assert out.outputs == ("a", "r", "input")  # an output that was an identity now names its source
    assert network_to_json(net) == before  # the input network is not mutated
    assert out.macs == net.macs and out.bytes_read() == net.bytes_read()  # identities move no data


def test_remove_identities_without_identities_returns_the_same_network(net: Network) -> None:
    plain = remove_identities(net)
    assert OpKind.IDENTITY not in plain.op_counts()
    assert remove_identities(plain) is plain


def test_cse_merges_duplicate_pure_ops_but_never_weighted_ones() -> None:
    b = NetworkBuilder("cse")
    x = b.input((1, 4, 8, 8))
    r1 = b.relu(x, name="r1")
    r2 = b.relu(x, name="r2")  # duplicate of r1
    s = b.activation(x, OpKind.SIGMOID, name="s")  # same input, different op: kept
    c1 = b.conv(x, 4, 3, padding=1, name="c1")
    c2 = b.conv(x, 4, 3, padding=1, name="c2")  # same attributes, different weights: kept
    n1 = b.batch_norm(x, name="n1")
    n2 = b.batch_norm(x, name="n2")  # weighted: kept
    a1 = b.add(r1, s, name="a1")
    a2 = b.add(s, r2, name="a2")  # same as a1 once r2 -> r1 (add is commutative)
    k1 = b.concat([r1, s], name="k1")
    k2 = b.concat([s, r1], name="k2")  # concat is not commutative: kept
    p1 = b.max_pool(x, 2, name="p1")
    p2 = b.max_pool(x, 2, ceil_mode=True, name="p2")  # same shape here, different attribute: kept
    net = b.build([a1, a2, c1, c2, n1, n2, k1, k2, p1, p2])
    out = eliminate_common_subexpressions(net)
    names = [layer.name for layer in out]
    assert "r2" not in names and "a2" not in names
    assert {"r1", "s", "c1", "c2", "n1", "n2", "a1", "k1", "k2", "p1", "p2"} == set(names)
    assert out.outputs == ("a1", "a1", "c1", "c2", "n1", "n2", "k1", "k2", "p1", "p2")
    assert out.layer("k2").inputs == ("s", "r1")
    assert out.macs == net.macs
    assert len(net) == 13  # the input network is untouched


def test_cse_without_duplicates_returns_the_same_network() -> None:
    b = NetworkBuilder("plain")
    x = b.input((1, 4, 8, 8))
    b.conv(x, 4, 1)
    b.conv(x, 4, 1)
    net = b.build()
    assert eliminate_common_subexpressions(net) is net


def test_cse_cascades_through_merged_layers() -> None:
    b = NetworkBuilder("cascade")
    x = b.input((1, 4, 8, 8))
    left = b.global_avg_pool(b.relu(x))
    right = b.global_avg_pool(b.relu(x))
    net = b.build([b.mul(left, right)])
    out = eliminate_common_subexpressions(net)
    assert [layer.op for layer in out] == [OpKind.RELU, OpKind.GLOBAL_AVG_POOL, OpKind.MUL]
    assert out.layers[-1].inputs == (out.layers[1].name, out.layers[1].name)


def test_canonicalize_is_idempotent(net: Network) -> None:
    b = NetworkBuilder("dup")
    x = b.input((1, 4, 8, 8))
    r1 = b.relu(b.identity(x))
    r2 = b.relu(x)  # a duplicate only once the identity is gone
    dup = b.build([b.add(r1, r2)])
    once = canonicalize(dup)
    assert [layer.op for layer in once] == [OpKind.RELU, OpKind.ADD]
    assert canonicalize(once) == once
    assert structure_key(canonicalize(once)) == structure_key(once)
    for network in (net, canonicalize(net)):
        assert canonicalize(canonicalize(network)) == canonicalize(network)


def test_canonical_forms_agree_for_equivalent_producers() -> None:
    """Two producers of the same computation (one exporter duplicates a pure op and adds an identity)."""

    def build(verbose: bool) -> Network:
        b = NetworkBuilder("v" if verbose else "c")
        x = b.input((1, 3, 8, 8))
        c = b.conv(x, 8, 3, padding=1, name="conv" if verbose else "c0")
        if verbose:
            c = b.identity(c)
        left = b.relu(c)
        right = b.relu(c) if verbose else left
        return b.build([b.add(left, right)])

    assert structure_key(build(True)) != structure_key(build(False))
    assert structure_key(canonicalize(build(True))) == structure_key(canonicalize(build(False)))


def test_a_chain_of_transposes_read_only_by_each_other_is_one_transpose() -> None:
    b = NetworkBuilder("chain")
    x = b.input((2, 16, 4, 8))
    heads = b.transpose(x, (0, 2, 1, 3), name="heads")  # (2, 4, 16, 8)
    key_t = b.transpose(heads, (0, 1, 3, 2), name="key_t")  # (2, 4, 8, 16)
    again = b.transpose(key_t, (0, 1, 3, 2), name="again")  # (2, 4, 16, 8)
    out = b.relu(again, name="r")
    net = b.build([out])
    fused = fuse_transposes(net)
    assert [layer.name for layer in fused] == ["again", "r"]
    assert fused.layer("again").inputs == ("input",)
    assert fused.layer("again").input_shapes == ((2, 16, 4, 8),)
    assert fused.layer("again").output_shape == (2, 4, 16, 8)
    assert canonicalize(net) == canonicalize(fused) and fuse_transposes(fused) == fused


def test_a_transpose_read_twice_or_an_output_stays() -> None:
    b = NetworkBuilder("kept")
    x = b.input((2, 3, 5))
    t1 = b.transpose(x, (0, 2, 1), name="t1")
    t2 = b.transpose(t1, (1, 0, 2), name="t2")
    also = b.relu(t1, name="also")  # t1 has a second reader: both transposes run
    t3 = b.transpose(also, (0, 2, 1), name="t3")
    t4 = b.transpose(t3, (1, 0, 2), name="t4")
    net = b.build([t2, t3, t4])  # t3 is an output: it must be computed
    assert fuse_transposes(net) is net


def test_parts_of_one_tensor_are_not_merged() -> None:
    """Three selects of a packed qkv have one shape and one input, but are three different parts."""
    b = NetworkBuilder("qkv")
    packed = b.input((3, 2, 16, 8))
    q, k, v = (b.select(packed, 0, name=n) for n in ("q", "k", "v"))
    scores = b.matmul(q, b.transpose(k, (0, 2, 1), name="k_t"), name="scores")
    out = b.matmul(scores, v, name="out")
    net = b.build([out])
    assert [layer.name for layer in canonicalize(net)] == [layer.name for layer in net]
