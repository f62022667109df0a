"""Predict over gRPC answers exactly what the embedded predictor answers, names its estimator and the nearest known
devices, shares adapted models between devices with one signature, streams, and predicts arbitrary networks."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import pytest

from nas_latency.client import NearestDevice
from nas_latency.errors import FailedPreconditionError, NasLatencyError, NotFoundError
from nas_latency.frontends import onnx_to_ir
from nas_latency.ir import Network, NetworkBuilder
from nas_latency.macs_power_law import fit_macs_power_law
from nas_latency.measurements import MeasuredArchs
from nas_latency.predictor import Predictor
from search_spaces import get_space

SPACE = "nasbench201"
TOKEN = "s3cret-token"


@pytest.fixture
def running(serve: Callable[..., Any], sqlite_url: str) -> Any:
    return serve(sqlite_url, token=TOKEN)


def test_same_numbers_as_the_embedded_predictor(running: Any, sqlite_url: str, signature_archs: list[str],
                                                sample_archs: list[str],
                                                bundled_measurements: Callable[..., dict[str, float]]) -> None:
    client = running.client(token=TOKEN)
    measured = bundled_measurements(signature_archs, 3)
    client.register_device("pixel", SPACE, measured, description="a phone")
    other = bundled_measurements(signature_archs, 5)
    with Predictor(store_url=sqlite_url) as embedded:
        np.testing.assert_array_equal(client.predict(SPACE, sample_archs, device="pixel"),
                                      embedded.predict(SPACE, sample_archs, device="pixel"))
        np.testing.assert_array_equal(client.predict(SPACE, sample_archs, signature=other),
                                      embedded.predict(SPACE, sample_archs, signature=other))
        assert client.signature_set(SPACE, 7) == embedded.signature_set(SPACE, 7)
        assert client.device("pixel", SPACE) == embedded.device("pixel", SPACE)
        explained = client.device_model("pixel", SPACE)
        assert explained == embedded.device_model("pixel", SPACE) and explained.model
        assert client.explained_device("pixel", SPACE) == explained
        with pytest.raises(FailedPreconditionError, match="0 measurement\\(s\\) in space 'fbnet'"):
            client.device_model("pixel", "fbnet")
        assert client.explained_device("pixel", "fbnet") is None is embedded.explained_device("pixel", "fbnet")
        assert client.devices() == embedded.devices() == client.devices(SPACE)
        assert client.device_measurements("pixel", SPACE) == embedded.device_measurements("pixel", SPACE)
        assert client.device_measurements("pixel", SPACE).as_mapping() == measured
        with pytest.raises(NotFoundError, match="no measurements in space 'fbnet'"):
            client.device_measurements("pixel", "fbnet")
    assert client.spaces() == ["fbnet", "ganesan_mobile", SPACE]
    assert client.predict(SPACE, [], device="pixel").shape == (0,)


def test_a_measurement_the_others_disagree_with_is_left_out_and_named_over_grpc(
        running: Any, sqlite_url: str, signature_archs: list[str],
        bundled_measurements: Callable[..., dict[str, float]]) -> None:
    """A device registered with one of its ten measurements four times what it took (a throttled run): the
    server's model leaves it out and GetDevice names it, as the embedded predictor does; the other nine onboard
    the device as they would alone (to rounding: the measurements reach the model in another order)."""
    client = running.client(token=TOKEN)
    measured = bundled_measurements(signature_archs, 3)
    spiked_arch = signature_archs[4]
    client.register_device("throttled", SPACE, {**measured, spiked_arch: measured[spiked_arch] * 4.0})
    explained = client.device_model("throttled", SPACE)
    [left_out] = explained.left_out
    assert left_out.arch == spiked_arch and left_out.measured_ms == measured[spiked_arch] * 4.0
    assert left_out.predicted_ms == pytest.approx(measured[spiked_arch], rel=0.2)
    assert f"left out 1 measurement the others disagree with: {spiked_arch}" in explained.detail
    nine = {a: v for a, v in measured.items() if a != spiked_arch}
    with Predictor(store_url=sqlite_url) as embedded:
        assert embedded.device_model("throttled", SPACE) == explained
        np.testing.assert_allclose(client.predict(SPACE, signature_archs, device="throttled"),
                                   embedded.predict(SPACE, signature_archs, signature=nine), rtol=1e-12)
    client.register_device("steady", SPACE, measured)
    assert client.device_model("steady", SPACE).left_out == ()


def test_shared_signature_shares_one_adapted_model(running: Any, signature_archs: list[str],
                                                   bundled_measurements: Callable[..., dict[str, float]]) -> None:
    client = running.client(token=TOKEN)
    same = bundled_measurements(signature_archs, 2)
    client.register_device("board-a", SPACE, same)
    client.register_device("board-b", SPACE, same)
    client.register_device("board-c", SPACE, bundled_measurements(signature_archs, 2, scale=1.5))
    a = client.predict_detailed(SPACE, signature_archs, device="board-a")
    b = client.predict_detailed(SPACE, signature_archs, device="board-b")
    inline = client.predict_detailed(SPACE, signature_archs, signature=same)
    assert a.signature_key == b.signature_key
    np.testing.assert_array_equal(a.latency_ms, b.latency_ms)
    assert a.model.startswith("builtin:")
    # the nearest known devices: the twin at distance 0, then others; the device itself is not listed
    assert a.nearest_devices[0] == NearestDevice("board-b", "registered", 0.0)
    assert "board-a" not in [d.name for d in a.nearest_devices if d.kind == "registered"]
    assert len(a.nearest_devices) == 3
    distances = [d.rms_log_ratio for d in a.nearest_devices]
    assert distances == sorted(distances)
    assert any(d.kind == "bundled" for d in inline.nearest_devices + a.nearest_devices)
    c = client.predict_detailed(SPACE, signature_archs, device="board-c")
    assert c.signature_key != a.signature_key
    near_c = {d.name: d.rms_log_ratio for d in c.nearest_devices}
    if "board-a" in near_c:  # 1.5x slower everywhere: ln 1.5 apart on the signature archs (up to the model)
        assert near_c["board-a"] == pytest.approx(np.log(1.5), rel=0.05)
    shared = [m for m in client.adapted_models(SPACE) if m.signature_key == a.signature_key]
    assert len(shared) == 1 and shared[0].device_names == ("board-a", "board-b")


def test_uncertainty_when_asked(running: Any, signature_archs: list[str], sample_archs: list[str],
                                bundled_measurements: Callable[..., dict[str, float]]) -> None:
    client = running.client()
    signature = bundled_measurements(signature_archs, 1)
    plain = client.predict_detailed(SPACE, sample_archs, signature=signature)
    assert plain.latency_log_std is None
    detailed = client.predict_detailed(SPACE, sample_archs, signature=signature, include_uncertainty=True)
    np.testing.assert_array_equal(plain.latency_ms, detailed.latency_ms)
    model = running.registry.predictor.bundle(SPACE).model
    space = get_space(SPACE)
    try:  # does the built-in model give an uncertainty? (the shipped NB201 model does; a model may not)
        adaptation = model.adapt(space.model_features(list(signature)), np.array(list(signature.values())))
        expected = model.predict_with_uncertainty(space.model_features(sample_archs), adaptation)[1]
    except NasLatencyError:
        expected = None
    if expected is None:
        assert detailed.latency_log_std is None
    else:
        np.testing.assert_allclose(detailed.latency_log_std, expected, rtol=1e-12)
        assert np.all(np.isfinite(detailed.latency_log_std)) and np.all(detailed.latency_log_std > 0)
    if model.kind == "degenerate_aware" and model.base_.kind in ("blr", "blr_evidence"):
        assert expected is not None


def test_stream_predict_answers_in_order(running: Any, signature_archs: list[str], sample_archs: list[str],
                                         bundled_measurements: Callable[..., dict[str, float]]) -> None:
    client = running.client(token=TOKEN)
    client.register_device("loop", SPACE, bundled_measurements(signature_archs, 4))
    batches = [sample_archs[i:i + 17] for i in range(0, 170, 17)]
    streamed = list(client.stream_predict(iter(batches), space=SPACE, device="loop", timeout_s=60))
    assert len(streamed) == len(batches)
    for batch, values in zip(batches, streamed):
        np.testing.assert_array_equal(values, client.predict(SPACE, batch, device="loop"))


def test_stream_error_ends_the_stream_with_its_status(running: Any, signature_archs: list[str],
                                                      bundled_measurements: Callable[..., dict[str, float]]) -> None:
    from nas_latency.errors import InvalidInputError

    client = running.client()
    signature = bundled_measurements(signature_archs, 4)
    good = signature_archs[:3]
    results = []
    with pytest.raises(InvalidInputError, match="bad"):
        for values in client.stream_predict([good, ["bad"], good], space=SPACE, signature=signature, timeout_s=60):
            results.append(values)
    assert len(results) == 1


def _mac_line(signature: dict[str, float], networks: list[Network]) -> np.ndarray:
    """What the embedded library estimates for these networks on a device with these measurements."""
    space = get_space(SPACE)
    measured = MeasuredArchs(SPACE, tuple(signature), tuple(signature.values()))
    return fit_macs_power_law(space, measured).predict(networks)


def test_arbitrary_networks_use_the_labelled_macs_estimator(running: Any, signature_archs: list[str],
                                                            bundled_measurements: Callable[..., dict[str, float]],
                                                            conv_onnx_model: Callable[..., Any]) -> None:
    client = running.client(token=TOKEN)
    signature = bundled_measurements(signature_archs, 0)
    client.register_device("edge", SPACE, signature)
    space = get_space(SPACE)
    ir = space.to_ir(signature_archs[0])
    b = NetworkBuilder("tiny")
    b.linear(b.flatten(b.input((1, 3, 8, 8))), 10)
    tiny = b.build()
    onnx_bytes = conv_onnx_model("Relu", "relu").SerializeToString()
    result = client.predict_networks(SPACE, [ir, tiny, onnx_bytes], device="edge")
    assert result.model == "macs_loglinear"
    assert result.latency_log_std is None
    expected = _mac_line(signature, [ir, tiny, onnx_to_ir(onnx_bytes).network])
    assert onnx_to_ir(onnx_bytes).network.macs == 16 * 32 * 32 * 3 * 3 * 3
    np.testing.assert_allclose(result.latency_ms, expected, rtol=1e-12)
    same = client.predict_networks(SPACE, [ir], signature=signature)
    np.testing.assert_allclose(same.latency_ms, expected[:1], rtol=1e-12)
