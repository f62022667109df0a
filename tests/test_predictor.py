"""The embedded Predictor on a fresh store: every space works at once (built-in model trained from the bundled
data on first use), devices round-trip through the store, and bad requests are typed errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nas_latency.builtin_models import bundled_training_table
from nas_latency.errors import InvalidInputError, NotFoundError
from nas_latency.evaluate import spearman
from nas_latency.predictor import Predictor
from search_spaces import get_space


@pytest.fixture()
def predictor(tmp_path: Path) -> Predictor:
    with Predictor(store_url=f"sqlite:///{tmp_path / 'store.sqlite'}") as p:
        yield p


@pytest.mark.parametrize("space_name", ["fbnet", "ganesan_mobile"])
def test_fresh_store_trains_then_predicts_for_a_signature(predictor: Predictor, space_name: str) -> None:
    space = get_space(space_name)
    table = bundled_training_table(space)
    column = 0  # a training device: this checks plumbing and order, not generalization (see evaluate)
    truth = dict(zip(table.archs, table.latency_ms[:, column]))
    archs = predictor.signature_set(space_name, 10)
    assert len(set(archs)) == 10 and set(archs) <= set(table.archs)
    query = [a for a in table.archs if a not in set(archs)][:60]
    predicted = predictor.predict(space_name, query, signature={a: truth[a] for a in archs})
    assert predicted.shape == (len(query),) and np.all(predicted > 0)
    assert spearman(np.array([truth[a] for a in query]), predicted) > 0.7
    assert predictor.store.list_artifacts(space_name)[0].kind == "builtin_bundle"
    # the signature set is the space's shipped method's choice on the training devices, in its order
    from nas_latency.builtin_models import signature_method_of
    from nas_latency.signature import select_signature

    expected = select_signature(signature_method_of(space_name), table.latency_ms, table.archs, 10, seed=0,
                                features=space.model_features(table.archs),
                                degenerate_mask=space.degenerate_mask(table.archs))
    assert archs == list(expected)


def test_every_space_ships_a_known_signature_method() -> None:
    from nas_latency.builtin_models import DEFAULT_MODEL_SPECS, SIGNATURE_METHODS
    from nas_latency.signature import SELECTION_METHODS
    from search_spaces import space_names

    assert set(SIGNATURE_METHODS) == set(DEFAULT_MODEL_SPECS) == set(space_names())
    assert set(SIGNATURE_METHODS.values()) <= set(SELECTION_METHODS)


def test_devices_round_trip_and_removal(predictor: Predictor) -> None:
    space = get_space("nasbench201")
    archs = space.sample(6, seed=5)
    info = predictor.register_device("lab-gpu", "nasbench201", {a: 2.0 + i for i, a in enumerate(archs)},
                                     description="a test device")
    assert (info.name, info.space, info.n_measurements, info.description) == ("lab-gpu", "nasbench201", 6, "a test device")
    assert [d.name for d in predictor.devices("nasbench201")] == ["lab-gpu"]
    # Re-registering replaces the previous measurements of that space.
    predictor.register_device("lab-gpu", "nasbench201", {a: 3.0 for a in archs[:4]})
    assert predictor.device("lab-gpu", "nasbench201").n_measurements == 4
    first = predictor.predict("nasbench201", archs, device="lab-gpu")
    assert first.shape == (6,)
    predictor.remove_device("lab-gpu")
    with pytest.raises(NotFoundError, match="lab-gpu"):
        predictor.predict("nasbench201", archs, device="lab-gpu")


def test_devices_with_the_same_measurements_share_one_adapted_model(predictor: Predictor) -> None:
    space = get_space("nasbench201")
    table = bundled_training_table(space)
    truth = dict(zip(table.archs, table.latency_ms[:, 3]))
    measured = {a: truth[a] for a in predictor.signature_set("nasbench201", 10)}
    predictor.register_device("board-a", "nasbench201", measured)
    predictor.register_device("board-b", "nasbench201", measured)
    a = predictor.adapted("nasbench201", device="board-a")
    assert a is predictor.adapted("nasbench201", device="board-b")
    assert a is predictor.adapted("nasbench201", signature=measured)
    assert a.key.startswith("nasbench201:") and a.table is None  # the prediction table is made on first use
    query = table.archs[100:160]
    latency, std_log = predictor.predict_with_uncertainty("nasbench201", query, device="board-b")
    np.testing.assert_array_equal(latency, predictor.predict("nasbench201", query, device="board-a"))
    model = predictor.bundle("nasbench201").model
    expected = model.predict_with_uncertainty(space.model_features(query), a.adaptation)
    np.testing.assert_allclose(latency, expected[0], rtol=1e-12)
    np.testing.assert_allclose(std_log, expected[1], rtol=1e-9)
    assert a.table is not None and a.log_std_table is not None
    predictor.register_device("board-b", "nasbench201", {k: v * 2 for k, v in measured.items()})
    assert predictor.adapted("nasbench201", device="board-b") is not a  # new measurements, new adaptation
    predictor.remove_device("board-a")
    with pytest.raises(NotFoundError, match="board-a"):
        predictor.adapted("nasbench201", device="board-a")


def test_registering_adapts_once_and_the_order_of_the_measurements_does_not_matter(
        predictor: Predictor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    space = get_space("nasbench201")
    table = bundled_training_table(space)
    truth = dict(zip(table.archs, table.latency_ms[:, 5]))
    measured = {a: truth[a] for a in predictor.signature_set("nasbench201", 10)}
    calls: list[tuple[str, ...]] = []
    adapt = Predictor._adapt

    def counted(self: Predictor, space_obj: object, measurements: object) -> object:
        calls.append(measurements.archs)  # type: ignore[attr-defined]
        return adapt(self, space_obj, measurements)  # type: ignore[arg-type]

    monkeypatch.setattr(Predictor, "_adapt", counted)
    predictor.register_device("board", "nasbench201", dict(reversed(list(measured.items()))))
    summary = predictor.explained_device("board", "nasbench201")
    query = table.archs[200:230]
    latency = predictor.predict("nasbench201", query, device="board")
    assert summary is not None and len(calls) == 1 and list(calls[0]) == sorted(measured)
    # another process (here another Predictor on its own store) given the measurements in another order
    with Predictor(store_url=f"sqlite:///{tmp_path / 'other.sqlite'}") as other:
        shuffled = dict(sorted(measured.items(), key=lambda item: item[1]))
        np.testing.assert_array_equal(other.predict("nasbench201", query, signature=shuffled), latency)
    assert len(calls) == 2 and calls[1] == calls[0]


def test_prediction_requests_are_validated(predictor: Predictor) -> None:
    archs = get_space("nasbench201").sample(4, seed=9)
    signature = {a: 5.0 + i for i, a in enumerate(archs)}
    with pytest.raises(InvalidInputError, match="exactly one"):
        predictor.predict("nasbench201", archs)
    with pytest.raises(InvalidInputError, match="not one string"):
        predictor.predict("nasbench201", archs[0], signature=signature)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="at least 3"):
        predictor.predict("nasbench201", archs, signature=dict(list(signature.items())[:2]))
    with pytest.raises(InvalidInputError, match="finite number > 0"):
        predictor.predict("nasbench201", archs, signature={**signature, archs[0]: -1.0})
    with pytest.raises(NotFoundError, match="unknown search space"):
        predictor.predict("imagenet", archs, signature=signature)
    assert predictor.predict("nasbench201", [], signature=signature).shape == (0,)


def test_fast_path_and_general_path_agree(predictor: Predictor) -> None:
    space = get_space("nasbench201")
    archs = space.sample(200, seed=3)
    signature = {a: 4.0 + (i % 7) for i, a in enumerate(space.sample(10, seed=4))}
    fast = predictor.predict("nasbench201", archs, signature=signature)  # all 15,625 cached, then gathered
    model = predictor.bundle("nasbench201").model
    adaptation = model.adapt(space.model_features(list(signature)), np.array(list(signature.values())))
    direct = model.predict(space.model_features(archs), adaptation)
    np.testing.assert_allclose(fast, direct, rtol=1e-12)


def test_a_stored_model_of_another_spec_is_kept_with_a_warning(tmp_path: Path,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    with Predictor(store_url=url) as first:
        first.train("fbnet", model_spec="nnls_mix")
    with caplog.at_level("WARNING", logger="nas_latency.predictor"), Predictor(store_url=url) as again:
        assert again.bundle("fbnet").model_spec == "nnls_mix"
    assert any("not this release's default" in r.getMessage() and "models train --space fbnet" in r.getMessage()
               for r in caplog.records)


@pytest.mark.parametrize("space_name", ["nasbench201", "ganesan_mobile"])
def test_a_network_that_computes_nothing_is_refused_before_any_model_is_loaded(predictor: Predictor,
                                                                               space_name: str) -> None:
    """What is left of a network whose operators were all skipped (views and zeros) would predict about 0 ms."""
    from nas_latency.ir import NetworkBuilder

    b = NetworkBuilder("skipped")
    b.flatten(b.zero(b.identity(b.input((1, 3, 8, 8)))))
    signature = {"|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|": 1.0}
    with pytest.raises(InvalidInputError, match=r"network 'skipped' computes nothing .*\(its 3 layer\(s\): "
                                                r"flatten, identity, zero\); were its operators skipped\?"):
        predictor.predict_networks(space_name, [b.build()], signature=signature)
    assert predictor.store.list_artifacts() == []


def test_a_device_with_too_few_measurements_is_not_ready_rather_than_a_bad_request(predictor: Predictor) -> None:
    from nas_latency.errors import FailedPreconditionError
    from nas_latency.store import MeasurementRow

    archs = get_space("nasbench201").sample(2, seed=3)
    predictor.store.upsert_device("half-done")
    predictor.store.add_measurements("half-done", "nasbench201", [MeasurementRow(a, 4.0) for a in archs],
                                     source="contribute")
    thin = "'half-done' has 2 measurement\\(s\\) in space 'nasbench201'; the models explain a device from 3 on"
    with pytest.raises(FailedPreconditionError, match=thin):
        predictor.predict("nasbench201", archs, device="half-done")
    with pytest.raises(FailedPreconditionError, match=thin):
        predictor.device_model("half-done", "nasbench201")
    assert predictor.explained_device("half-done", "nasbench201") is None
    assert predictor.explained_device("half-done", "fbnet") is None
    with pytest.raises(NotFoundError, match="no-such-device"):
        predictor.explained_device("no-such-device", "nasbench201")


def test_contributed_measurements_join_the_registered_ones(predictor: Predictor) -> None:
    """``contribute_measurements`` (``devices add``) keeps what was registered: the device is then explained by all
    its measurements, exactly as an inline signature of the same values is; retries under one request id write
    once; a re-measured arch replaces its added value, and one both registered and added counts at their
    geometric mean."""
    from nas_latency.errors import ConflictError
    from nas_latency.store import MeasurementRow

    space = get_space("nasbench201")
    table = bundled_training_table(space)
    truth = dict(zip(table.archs, table.latency_ms[:, 0]))
    archs = predictor.signature_set(space.name, 10)
    first, extra = archs[:5], archs[5:]
    predictor.register_device("grow", space.name, {a: truth[a] for a in first})
    result = predictor.contribute_measurements("grow", space.name, {a: truth[a] for a in extra}, request_id="run-1",
                                               environment={"threads": 2})
    assert (result.inserted, result.replaced, result.duplicate_request, result.model_refitted) == (5, 0, False, True)
    assert result.device.n_measurements == 10
    query = [a for a in table.archs if a not in set(archs)][:50]
    np.testing.assert_allclose(predictor.predict(space.name, query, device="grow"),
                               predictor.predict(space.name, query, signature={a: truth[a] for a in archs}))
    again = predictor.contribute_measurements("grow", space.name, {a: truth[a] for a in extra}, request_id="run-1",
                                              environment={"threads": 2})
    assert (again.inserted, again.replaced, again.duplicate_request) == (5, 0, True)
    with pytest.raises(ConflictError, match="run-1"):
        predictor.contribute_measurements("grow", space.name, {extra[0]: 1.0}, request_id="run-1")
    stored = predictor.store.measurements("grow", space.name, source="contribute")
    assert len(stored) == 5 and all(m.environment == {"threads": 2} for m in stored)

    remeasured = predictor.contribute_measurements(
        "grow", space.name, [MeasurementRow(extra[0], 2 * truth[extra[0]], n_runs=30)])
    assert (remeasured.inserted, remeasured.replaced, remeasured.device.n_measurements) == (0, 1, 10)
    both = predictor.contribute_measurements("grow", space.name, {first[0]: 4 * truth[first[0]]})
    assert (both.inserted, both.replaced, both.device.n_measurements) == (1, 0, 10)
    seen = predictor.device_measurements("grow", space.name).as_mapping()
    assert seen[extra[0]] == pytest.approx(2 * truth[extra[0]]) and seen[first[0]] == pytest.approx(2 * truth[first[0]])

    with pytest.raises(NotFoundError, match="nobody"):
        predictor.contribute_measurements("nobody", space.name, {first[1]: 1.0})
    with pytest.raises(InvalidInputError, match="contribution to grow: row 2"):
        predictor.contribute_measurements("grow", space.name, {first[1]: 1.0, first[2]: -1.0})
    with pytest.raises(InvalidInputError, match="at least 1"):
        predictor.contribute_measurements("grow", space.name, {})
    assert len(predictor.store.measurements("grow", space.name)) == 5 + 6  # nothing written by the refused calls

    predictor.store.upsert_device("thin")
    thin = predictor.contribute_measurements("thin", space.name, {first[0]: 1.0})
    assert (thin.inserted, thin.model_refitted, thin.device.n_measurements) == (1, False, 1)
