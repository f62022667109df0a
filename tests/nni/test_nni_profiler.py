"""NB201 sample ⇄ string through NNI's real NasBench201 hub space, and the LatencyProfiler's two paths."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from nas_latency.errors import FailedPreconditionError, InvalidInputError
from nas_latency.nni.profiler import LatencyProfiler, is_nasbench201_space
from nas_latency.nni.search import nasbench201_space
from nas_latency.predictor import Predictor
from search_spaces import get_space
from search_spaces.nasbench201.codec import EDGES, parse_arch
from search_spaces.nasbench201.nni_adapter import NNI_LABELS, from_nni_sample, to_nni_sample

SPACE = "nasbench201"
PROBE = "probe"


@pytest.fixture(scope="module")
def hub():  # type: ignore[no-untyped-def]
    return nasbench201_space()


def _op_of(module: nn.Module) -> str:
    """The NAS-Bench-201 op name a module of NNI's frozen NasBench201 cell computes."""
    from nni.nas.hub.pytorch.nasbench201 import Pooling, ReLUConvBN, Zero

    if isinstance(module, Zero):
        return "none"
    if isinstance(module, nn.Identity):
        return "skip_connect"
    if isinstance(module, Pooling):
        assert isinstance(module.op, nn.AvgPool2d) and module.op.kernel_size == 3
        return "avg_pool_3x3"
    if isinstance(module, ReLUConvBN):
        conv = next(m for m in module.modules() if isinstance(m, nn.Conv2d))
        return {(1, 1): "nor_conv_1x1", (3, 3): "nor_conv_3x3"}[tuple(conv.kernel_size)]
    raise AssertionError(f"unexpected op module {type(module).__name__}")


def test_hub_space_labels_and_ops_are_the_adapters(hub) -> None:  # type: ignore[no-untyped-def]
    choices = hub.simplify()
    assert tuple(choices) == NNI_LABELS
    assert is_nasbench201_space(hub)
    for label in NNI_LABELS:
        assert set(choices[label].values) == {"none", "skip_connect", "conv_1x1", "conv_3x3", "avg_pool_3x3"}


@pytest.mark.parametrize("settings", [{"stem_out_channels": 64}, {"num_modules_per_stack": 10},
                                      {"num_labels": 1000}])
def test_the_hub_space_with_other_settings_is_not_the_benchmark(settings: dict[str, int]) -> None:
    """The same six choices, but not NAS-Bench-201's networks: no fast path (it would price the benchmark's)."""
    from nni.nas.hub.pytorch import NasBench201

    wider = NasBench201(**settings)
    assert tuple(wider.simplify()) == NNI_LABELS and not is_nasbench201_space(wider)
    name, value = next(iter(settings.items()))
    shown = {"stem_out_channels": "channels", "num_modules_per_stack": "num_modules"}.get(name, name)
    with pytest.raises(InvalidInputError, match=rf"space= is required for NNI's NasBench201 built with .*{shown}="
                                                rf"{value}.* \(NAS-Bench-201's networks have channels=16"):
        LatencyProfiler(wider, signature={"a": 1.0})


#: every op once, and a different op on each edge (so a swapped edge or op would show)
ALL_OPS = "|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|avg_pool_3x3~0|none~1|nor_conv_3x3~2|"


@pytest.fixture(scope="module")
def frozen(hub) -> nn.Module:  # type: ignore[no-untyped-def]
    return hub.freeze(to_nni_sample(ALL_OPS)).eval()  # a few seconds: NNI builds the whole network


def test_sample_string_round_trip(hub) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.RandomState(0)
    choices = hub.simplify()  # (hub.random() would also build the network: seconds per sample)
    for _ in range(50):
        sample = {label: choice.random(random_state=rng) for label, choice in choices.items()}
        arch = from_nni_sample(sample)
        assert get_space(SPACE).canonical(arch) == arch
        assert to_nni_sample(arch) == sample
    for arch in get_space(SPACE).sample(50, seed=4):  # string -> sample -> string, sample accepted by the space
        sample = to_nni_sample(arch)
        hub.validate(sample)
        assert from_nni_sample(sample) == arch
    with pytest.raises(InvalidInputError, match="cell/2_3"):
        from_nni_sample({label: "conv_3x3" for label in NNI_LABELS[:-1]})


def test_the_frozen_hub_network_computes_the_string(frozen: nn.Module) -> None:
    ops = parse_arch(ALL_OPS)
    cells = [c for c in frozen.cells if hasattr(c, "layers")]
    assert len(cells) == 15
    for cell in cells:  # every normal cell has, on edge source->target, the op the string names there
        for (source, target), op in zip(EDGES, ops):
            assert _op_of(cell.layers[target - 1][source]) == op


def test_fast_path_matches_the_predictor_and_caches(hub, nb201_store_url: str) -> None:  # type: ignore[no-untyped-def]
    with Predictor(store_url=nb201_store_url) as predictor:
        profiler = LatencyProfiler(hub, device=PROBE, predictor=predictor)
        archs = get_space(SPACE).sample(12, seed=1)
        samples = [to_nni_sample(a) for a in archs]
        expected = predictor.predict(SPACE, archs, device=PROBE)
        np.testing.assert_allclose(profiler.profile_many(samples), expected)
        assert profiler.stats.backend_calls == 1 and profiler.stats.predicted == 12
        assert profiler.profile(samples[3]) == pytest.approx(expected[3])
        assert profiler.stats.backend_calls == 1 and profiler.stats.cache_hits == 1
        assert profiler.arch_of(samples[0]) == archs[0]
        with pytest.raises(InvalidInputError, match="exactly one"):
            LatencyProfiler(hub, predictor=predictor)
        with pytest.raises(InvalidInputError, match="unknown op"):
            profiler.profile({**samples[0], "cell/0_1": "conv_5x5"})


def test_fast_path_gives_the_models_standard_deviation_from_the_same_call(  # type: ignore[no-untyped-def]
        hub, nb201_store_url: str, server_address: str) -> None:
    from nas_latency.client import LatencyClient

    archs = get_space(SPACE).sample(6, seed=2)
    samples = [to_nni_sample(a) for a in archs]
    with Predictor(store_url=nb201_store_url) as predictor:
        expected_ms, expected_sd = predictor.predict_with_uncertainty(SPACE, archs, device=PROBE)
        profiler = LatencyProfiler(hub, device=PROBE, predictor=predictor)
        latency, log_std = profiler.profile_with_uncertainty(samples)
        np.testing.assert_allclose(latency, expected_ms)
        np.testing.assert_allclose(log_std, expected_sd)
        assert np.all(log_std > 0) and profiler.stats.without_uncertainty == 0
        again_ms, again_sd = profiler.profile_with_uncertainty(samples[::-1])  # from the cache, in the order asked
        np.testing.assert_allclose(again_ms, expected_ms[::-1])
        np.testing.assert_allclose(again_sd, expected_sd[::-1])
        assert profiler.stats.backend_calls == 1 and profiler.stats.cache_hits == 6
        profiler.close()
    with LatencyClient(server_address) as client:  # the server gives the same
        remote = LatencyProfiler(hub, device=PROBE, predictor=client)
        remote_ms, remote_sd = remote.profile_with_uncertainty(samples)
    np.testing.assert_allclose(remote_ms, expected_ms, rtol=1e-9)
    np.testing.assert_allclose(remote_sd, expected_sd, rtol=1e-6)


class _NoUncertainty:
    """A backend whose model gives no uncertainty (as a user-trained model without one)."""

    def __init__(self, inner: Predictor) -> None:
        self.inner = inner

    def device(self, name: str, space: str) -> object:
        return self.inner.device(name, space)

    def predict(self, space: str, archs: list[str], **selector: object) -> np.ndarray:
        return self.inner.predict(space, archs, **selector)  # type: ignore[arg-type]

    def predict_with_uncertainty(self, space: str, archs: list[str], **selector: object) -> object:
        self.refusals = getattr(self, "refusals", 0) + 1
        raise FailedPreconditionError(f"the {space} model gives no uncertainty")


def test_a_model_without_uncertainty_gives_nan_and_says_how_many(  # type: ignore[no-untyped-def]
        hub, nb201_store_url: str) -> None:
    archs = get_space(SPACE).sample(4, seed=3)
    with Predictor(store_url=nb201_store_url) as predictor:
        backend = _NoUncertainty(predictor)
        profiler = LatencyProfiler(hub, device=PROBE, predictor=backend)  # type: ignore[arg-type]
        latency, log_std = profiler.profile_with_uncertainty([to_nni_sample(a) for a in archs[:2]])
        more, more_std = profiler.profile_with_uncertainty([to_nni_sample(a) for a in archs[2:]])
        np.testing.assert_allclose(np.concatenate([latency, more]), predictor.predict(SPACE, archs, device=PROBE))
    assert np.all(np.isnan(log_std)) and np.all(np.isnan(more_std)) and profiler.stats.without_uncertainty == 4
    assert backend.refusals == 1  # asked once; the second call asks for latencies only


class _TinySpace:  # built lazily: ModelSpace subclasses need nni imported
    @staticmethod
    def make() -> nn.Module:
        from nni.nas.nn.pytorch import LayerChoice, ModelSpace

        class Tiny(ModelSpace):
            def __init__(self) -> None:
                super().__init__()
                self.stem = nn.Conv2d(3, 8, 3, padding=1)
                self.block = LayerChoice([nn.Conv2d(8, 8, 1), nn.Conv2d(8, 8, 3, padding=1),
                                          nn.Conv2d(8, 8, 5, padding=2)], label="block")
                self.head = nn.Linear(8, 10)

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                x = torch.relu(self.block(torch.relu(self.stem(x))))
                return self.head(x.mean((2, 3)))

        return Tiny()


def test_generic_path_freezes_traces_and_predicts(nb201_store_url: str) -> None:
    space = _TinySpace.make()
    assert not is_nasbench201_space(space)
    with Predictor(store_url=nb201_store_url) as predictor:
        with pytest.raises(InvalidInputError, match="space= is required"):
            LatencyProfiler(space, device=PROBE, predictor=predictor)
        profiler = LatencyProfiler(space, device=PROBE, space=SPACE, predictor=predictor,
                                   example_input=torch.randn(1, 3, 32, 32))
        latency = profiler.profile_many([{"block": 0}, {"block": 1}, {"block": 2}])
    assert profiler.path == "generic" and profiler.network_model == "macs_loglinear"
    assert np.all(latency > 0) and latency[0] < latency[1] < latency[2]  # more MACs, more time
    assert profiler.stats.skipped_operators == {}


def test_generic_path_on_the_hub_space_sees_the_fast_paths_network(frozen: nn.Module) -> None:
    """sample → frozen torch module → IR (NNI's cell sums with torch.stack, which the IR lacks: skipped explicitly,
    and counted) has the MACs of the string's own IR."""
    from nas_latency.frontends import torch_to_ir

    conversion = torch_to_ir(frozen, torch.randn(1, 3, 32, 32), on_unsupported="skip")
    assert conversion.network.macs == get_space(SPACE).to_ir(ALL_OPS).macs
    assert {node.operator for node in conversion.skipped} == {"stack", "sum"}
