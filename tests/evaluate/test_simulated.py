"""Simulated accelerators (``nas_latency.evaluate.simulated``): drawn deterministically, a roofline per layer plus
an overhead, pruning runs only the layers that are read, and added to a dataset as one held-out group."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from nas_latency.errors import InvalidInputError
from nas_latency.evaluate.datasets import load_latency_dataset
from nas_latency.evaluate.simulated import (
    FREE_GROUPS,
    NOISE_SIGMA,
    PARAMETER_RANGES,
    SIMULATED_GROUP,
    SIMULATED_KIND,
    draw_accelerators,
    layer_table,
    simulated_latency_ms,
    simulated_rows,
    with_simulated_devices,
)
from nas_latency.ir.features import GROUP_OF
from nas_latency.ir.liveness import needed_layers
from search_spaces import get_space

SPACE = get_space("nasbench201")
#: a dead cell (no input→output path), one whose node 2 is never read (edge 2→3 `none`), one that reads everything
DEAD = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|none~0|none~1|none~2|"
UNREAD = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_1x1~1|none~2|"
READ = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_1x1~1|avg_pool_3x3~2|"


def test_accelerators_are_drawn_deterministically_within_the_ranges() -> None:
    devices = draw_accelerators(6, seed=3)
    assert devices == draw_accelerators(6, seed=3)
    assert devices != draw_accelerators(6, seed=4)
    assert [d.prunes for d in devices] == [False, True] * 3
    assert [d.name for d in devices[:2]] == ["sim0_runs_all", "sim1_prunes"]
    for device in devices:
        assert PARAMETER_RANGES["macs_per_ms"][0] <= device.macs_per_ms <= PARAMETER_RANGES["macs_per_ms"][1]
        assert PARAMETER_RANGES["bytes_per_ms"][0] <= device.bytes_per_ms <= PARAMETER_RANGES["bytes_per_ms"][1]
        low, high = PARAMETER_RANGES["overhead_ms"]
        assert all(low <= v <= high for v in device.overhead_ms.values())
        assert not FREE_GROUPS & set(device.overhead_ms)
        assert device.facts()["kind"] == SIMULATED_KIND
    for bad in (0, -1, True, 2.5):
        with pytest.raises(InvalidInputError, match="positive integer"):
            draw_accelerators(bad)  # type: ignore[arg-type]


def test_a_device_sums_a_roofline_and_an_overhead_over_the_layers_it_runs() -> None:
    networks = [SPACE.to_ir(a) for a in (DEAD, UNREAD, READ)]
    runs_all = draw_accelerators(1, seed=0)[0]
    table = layer_table(networks)
    by_hand = []
    for network in networks:
        total = 0.0
        for layer in network.layers:
            group = GROUP_OF[layer.op]
            if group in FREE_GROUPS:
                continue
            moved = layer.bytes_read(4) + layer.bytes_written(4)
            total += runs_all.overhead_ms[group] + max(
                layer.macs / (runs_all.macs_per_ms * runs_all.efficiency[group]), moved / runs_all.bytes_per_ms)
        by_hand.append(total)
    assert simulated_latency_ms(table, runs_all, noise_seed=None) == pytest.approx(by_hand, rel=1e-12)

    # the same parameters, pruning: the dead cell in a sliver of the time, node 2's convolutions skipped, and a
    # network that reads every value it computes unchanged
    pruning = replace(runs_all, name="p", prunes=True)
    every, pruned = simulated_latency_ms(table, runs_all, noise_seed=None), simulated_latency_ms(
        table, pruning, noise_seed=None)
    assert pruned[0] < 0.2 * every[0]
    assert pruned[1] < every[1]
    assert pruned[2] == pytest.approx(every[2], rel=1e-12)
    assert len(needed_layers(networks[2])) > len(needed_layers(networks[1]))


def test_timing_noise_is_seeded_and_about_one_percent() -> None:
    archs = SPACE.sample(300, seed=1)
    table = layer_table([SPACE.to_ir(a) for a in archs])
    device = draw_accelerators(1)[0]
    clean = simulated_latency_ms(table, device, noise_seed=None)
    noisy = simulated_latency_ms(table, device, noise_seed=0)
    assert np.array_equal(noisy, simulated_latency_ms(table, device, noise_seed=0))
    assert not np.array_equal(noisy, simulated_latency_ms(table, device, noise_seed=1))
    assert np.std(np.log(noisy / clean)) == pytest.approx(NOISE_SIGMA, rel=0.2)


def test_simulated_devices_join_the_dataset_as_one_group_measured_on_the_rows_asked_for() -> None:
    dataset = load_latency_dataset("ganesan_mobile")
    space = get_space("ganesan_mobile")
    required = dataset.archs[:3]
    rows = simulated_rows(dataset, required, sample=20, seed=0)
    assert set(dataset.arch_indices(required)) <= set(rows) and len(rows) == 23
    assert np.array_equal(rows, simulated_rows(dataset, required, sample=20, seed=0))
    devices = draw_accelerators(2)
    extended = with_simulated_devices(dataset, devices, rows, [space.to_ir(dataset.archs[i]) for i in rows])
    assert extended.devices == [*dataset.devices, "sim0_runs_all", "sim1_prunes"]
    assert extended.devices_of(SIMULATED_GROUP) == ["sim0_runs_all", "sim1_prunes"]
    column = extended.latency_of("sim1_prunes")
    assert np.isfinite(column[rows]).all() and (column[rows] > 0).all()
    assert np.isnan(np.delete(column, rows)).all()
    assert np.array_equal(extended.latency_ms[:, :len(dataset.devices)], dataset.latency_ms, equal_nan=True)
    assert extended.info["sim1_prunes"]["prunes"] is True and extended.info["sim1_prunes"]["n_measured"] == 23
    with pytest.raises(InvalidInputError, match="already has a device named 'sim0_runs_all'"):
        with_simulated_devices(extended, devices[:1], rows, [space.to_ir(dataset.archs[i]) for i in rows])
    with pytest.raises(InvalidInputError, match="2 networks for 23 rows"):
        with_simulated_devices(dataset, devices, rows, [space.to_ir(dataset.archs[i]) for i in rows[:2]])


def test_the_help_query_range_is_always_simulated() -> None:
    dataset = load_latency_dataset("fbnet")
    rows = simulated_rows(dataset, [], sample=0, seed=0)
    assert np.array_equal(dataset.arch_ids[rows], np.arange(900, 1900))
