"""The device-onboarding contract of ARCHITECTURE.md, end to end through the `nas-latency` command, on a real
SQLite store in a fresh NAS_LATENCY_HOME (the built-in model is trained from the bundled data on first use), and
the queries about an onboarded device: predict, rank, and choose (the candidate most likely to meet a budget)."""

from __future__ import annotations

import csv
import io
import json
import math
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import pytest

from nas_latency.cli import main
from nas_latency.data import load_table, nb201_accuracy
from nas_latency.evaluate.budget_choice import log_target_probabilities, most_likely_to_meet, with_measurements
from search_spaces import get_space

SPACE = "nasbench201"
HELD_OUT = "gold_6240"  # onboarded as if new: the model is trained without it


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("nas_latency_home")
    mp = pytest.MonkeyPatch()
    mp.setenv("NAS_LATENCY_HOME", str(path))
    assert main(["models", "train", "--space", SPACE, "--exclude-device", HELD_OUT, "--format", "json"]) == 0
    yield path
    mp.undo()


@pytest.fixture(scope="module")
def truth() -> pd.Series:
    return load_table("nb201_latency").set_index("arch_string")[HELD_OUT]


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def write_measurements(path: Path, archs: list[str], truth: pd.Series) -> Path:
    path.write_text("arch,latency_ms\n" + "".join(f"{a},{truth[a]}\n" for a in archs))
    return path


def signature(capsys: pytest.CaptureFixture[str], size: int = 10) -> list[str]:
    code, out, _ = cli(capsys, "signature", "--space", SPACE, "--size", str(size))
    assert code == 0
    document = json.loads(out)
    assert document["space"] == SPACE
    return document["archs"]


def test_signature_is_k_distinct_valid_archs_and_stable(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    archs = signature(capsys, 10)
    assert len(archs) == len(set(archs)) == 10
    assert signature(capsys, 10) == archs
    assert signature(capsys, 5) == archs[:5]  # most informative first


def test_register_then_predict_ranks_an_unseen_device(
    home: Path, truth: pd.Series, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    archs = signature(capsys, 10)
    measurements = write_measurements(tmp_path / "m.csv", archs, truth)
    code, _, err = cli(capsys, "devices", "register", "newdev", "--space", SPACE, "--measurements", str(measurements))
    assert code == 0, err
    query = [a for a in truth.index[:3000] if a not in set(archs)]
    (tmp_path / "archs.txt").write_text("\n".join(query) + "\n")
    code, out, _ = cli(capsys, "predict", "--space", SPACE, "--device", "newdev", "--archs", str(tmp_path / "archs.txt"),
                       "--format", "csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert list(rows[0]) == ["arch", "latency_ms"]
    assert [r["arch"] for r in rows] == query
    predicted = np.array([float(r["latency_ms"]) for r in rows])
    from nas_latency.evaluate import spearman

    # An honest few-shot figure: the model never saw this device, only its 10 signature latencies.
    assert spearman(truth[query].to_numpy(), predicted) > 0.9


def test_predict_with_uncertainty_prints_a_95_percent_interval(
    home: Path, truth: pd.Series, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    archs = signature(capsys, 10)
    measurements = write_measurements(tmp_path / "m.csv", archs, truth)
    query = [a for a in truth.index[:2000] if a not in set(archs)]
    (tmp_path / "q.txt").write_text("\n".join(query))
    argv = ["predict", "--space", SPACE, "--signature", str(measurements), "--archs", str(tmp_path / "q.txt")]
    code, plain, _ = cli(capsys, *argv)
    assert code == 0
    code, out, _ = cli(capsys, *argv, "--uncertainty")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert list(rows[0]) == ["arch", "latency_ms", "latency_log_std", "low95_ms", "high95_ms"]
    assert [r["latency_ms"] for r in rows] == [r["latency_ms"] for r in csv.DictReader(io.StringIO(plain))]
    latency, std, low, high = (np.array([float(r[k]) for r in rows])
                               for k in ("latency_ms", "latency_log_std", "low95_ms", "high95_ms"))
    assert np.all(std > 0)
    np.testing.assert_allclose(low, latency * np.exp(-1.959964 * std), rtol=1e-5)
    np.testing.assert_allclose(high, latency * np.exp(1.959964 * std), rtol=1e-5)
    measured = truth[query].to_numpy()
    inside = np.mean((measured >= low) & (measured <= high))
    assert 0.8 < inside <= 1.0  # calibrated on the training devices; this device was not one of them


def test_stateless_signature_predicts_like_the_registered_device(
    home: Path, truth: pd.Series, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    archs = signature(capsys, 10)
    measurements = write_measurements(tmp_path / "m.csv", archs, truth)
    assert cli(capsys, "devices", "register", "twin", "--space", SPACE, "--measurements", str(measurements))[0] == 0
    query = list(truth.index[100:140])
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n".join(query)))
    code, by_signature, _ = cli(capsys, "predict", "--space", SPACE, "--signature", str(measurements), "--archs", "-")
    assert code == 0
    (tmp_path / "q.txt").write_text("\n".join(query))
    code, by_device, _ = cli(capsys, "predict", "--space", SPACE, "--device", "twin", "--archs", str(tmp_path / "q.txt"))
    assert code == 0
    assert by_signature == by_device


@pytest.mark.parametrize(
    "mutate, needle",
    [
        (lambda rows: rows[:2], "at least 3"),
        (lambda rows: rows[:3] + [("|nor_conv_3x3~0|+|bogus|", "1.0")], "row 5"),
        (lambda rows: rows[:3] + [(rows[0][0], "2.0")], "measured twice"),
        (lambda rows: rows[:3] + [(rows[3][0], "nan")], "finite number > 0"),
        (lambda rows: rows[:3] + [(rows[3][0], "0")], "finite number > 0"),
        (lambda rows: rows[:3] + [(rows[3][0], "-4")], "finite number > 0"),
    ],
)
def test_bad_measurements_exit_2_and_write_nothing(
    home: Path, truth: pd.Series, tmp_path: Path, capsys: pytest.CaptureFixture[str], mutate, needle: str
) -> None:
    rows = [(a, str(truth[a])) for a in truth.index[:6]]
    path = tmp_path / "bad.csv"
    path.write_text("arch,latency_ms\n" + "".join(f"{a},{v}\n" for a, v in mutate(rows)))
    code, out, err = cli(capsys, "devices", "register", "baddev", "--space", SPACE, "--measurements", str(path))
    assert code == 2 and out == "" and needle in err
    code, out, _ = cli(capsys, "devices", "list", "--format", "json")
    assert "baddev" not in {row["name"] for row in json.loads(out)}


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["predict", "--space", SPACE, "--device", "nobody", "--archs", "{archs}"], "nobody"),
        (["predict", "--space", "nospace", "--device", "x", "--archs", "{archs}"], "unknown search space"),
        (["signature", "--space", SPACE, "--size", "0"], "at least 1"),
        (["signature", "--space", SPACE, "--size", "65"], "larger than the 64 archs"),
        (["devices", "register", "bad name!", "--space", SPACE, "--measurements", "{good}"], "bad name!"),
        (["models", "train", "--space", SPACE, "--exclude-device", "no_such_device"], "no_such_device"),
        (["models", "train", "--space", SPACE, "--model", "blr("], "model spec"),
    ],
)
def test_bad_requests_exit_2(
    home: Path, truth: pd.Series, tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], needle: str
) -> None:
    (tmp_path / "archs.txt").write_text(truth.index[0] + "\n")
    good = write_measurements(tmp_path / "good.csv", list(truth.index[:5]), truth)
    argv = [a.replace("{archs}", str(tmp_path / "archs.txt")).replace("{good}", str(good)) for a in argv]
    code, out, err = cli(capsys, *argv)
    assert code == 2, err
    assert out == ""
    assert needle in err


def test_unknown_arch_in_a_prediction_request_names_it(
    home: Path, truth: pd.Series, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = write_measurements(tmp_path / "good.csv", list(truth.index[:5]), truth)
    assert cli(capsys, "devices", "register", "probe", "--space", SPACE, "--measurements", str(good))[0] == 0
    (tmp_path / "archs.txt").write_text(f"{truth.index[0]}\n|skip_connect~0|+|oops~0|\n")
    code, out, err = cli(capsys, "predict", "--space", SPACE, "--device", "probe", "--archs", str(tmp_path / "archs.txt"))
    assert code == 2 and out == "" and "oops" in err


def test_models_list_shows_the_trained_bundle(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "models", "list", "--format", "json")
    assert code == 0
    rows = [r for r in json.loads(out) if r["space"] == SPACE]
    assert rows and rows[-1]["kind"] == "builtin_bundle"
    assert rows[-1]["model"].startswith("clamp_speed(degenerate_aware(")


def test_a_network_file_is_estimated_by_the_labelled_macs_law_in_process(
    home: Path, truth: pd.Series, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """NB201's model takes its own ids only: a layer table gets ``macs_loglinear`` (as through the server), with
    a note on stderr saying so, and bigger convolutions take longer."""
    from nas_latency.ir import NetworkBuilder, network_to_json
    from nas_latency.macs_power_law import fit_macs_power_law
    from nas_latency.measurements import MeasuredArchs

    archs = signature(capsys, 10)
    measurements = write_measurements(tmp_path / "m.csv", archs, truth)
    assert cli(capsys, "devices", "register", "netdev", "--space", SPACE, "--measurements", str(measurements))[0] == 0
    networks = []
    for channels in (4, 64, 512):
        b = NetworkBuilder(f"conv{channels}")
        b.conv(b.input((1, 3, 32, 32)), channels, 3, padding=1)
        networks.append(b.build())
        (tmp_path / f"conv{channels}.json").write_text(network_to_json(networks[-1]))
    lines = [archs[0], *(f"@{tmp_path / n.name}.json" for n in networks)]
    (tmp_path / "archs.txt").write_text("\n".join(lines) + "\n")
    code, out, err = cli(capsys, "predict", "--space", SPACE, "--device", "netdev", "--archs",
                         str(tmp_path / "archs.txt"), "--format", "csv")
    assert code == 0, err
    assert "estimated by macs_loglinear" in err and "3 network file(s)" in err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["arch"] for r in rows] == lines
    predicted = np.array([float(r["latency_ms"]) for r in rows[1:]])
    law = fit_macs_power_law(get_space(SPACE), MeasuredArchs(SPACE, tuple(archs), tuple(truth[a] for a in archs)))
    np.testing.assert_allclose(predicted, law.predict(networks), rtol=1e-5)
    assert predicted[0] < predicted[1] < predicted[2]


def test_the_first_three_signature_archs_onboard_a_device(
    home: Path, truth: pd.Series, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The contract's minimum, 3 rows, with the space's own signature order (its first arch is a dead cell)."""
    archs = signature(capsys, 3)
    assert get_space(SPACE).degenerate_mask(archs).any()
    measurements = write_measurements(tmp_path / "m3.csv", archs, truth)
    code, _, err = cli(capsys, "devices", "register", "three", "--space", SPACE, "--measurements", str(measurements))
    assert code == 0, err
    (tmp_path / "q.txt").write_text("\n".join(truth.index[:50]) + "\n")
    code, out, err = cli(capsys, "predict", "--space", SPACE, "--device", "three", "--archs", str(tmp_path / "q.txt"))
    assert code == 0, err
    predicted = np.array([float(r["latency_ms"]) for r in csv.DictReader(io.StringIO(out))])
    assert predicted.shape == (50,) and np.all(predicted > 0)


def test_registering_a_measurement_the_others_disagree_with_says_to_measure_it_again(
    home: Path, truth: pd.Series, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One of ten measurements a third of what the device took (a typo, a unit slip): register keeps it in the
    store, the model leaves it out, and both register and ``devices show`` name it."""
    archs = signature(capsys, 10)
    measured = truth[archs].copy()
    measured[archs[6]] /= 3.0
    path = tmp_path / "spiked.csv"
    path.write_text("arch,latency_ms\n" + "".join(f"{a},{v!r}\n" for a, v in measured.items()))
    code, out, err = cli(capsys, "devices", "register", "typo", "--space", SPACE, "--measurements", str(path),
                         "--format", "json")
    assert code == 0, err
    assert json.loads(out)[0]["n_measurements"] == 10
    assert f"note: the model leaves out the measurement of {archs[6]} (measured" in err
    assert "measure it again" in err
    code, out, err = cli(capsys, "devices", "show", "typo", "--space", SPACE, "--format", "json")
    assert code == 0, err
    row = json.loads(out)[0]
    assert row["left_out_archs"] == archs[6] and "left out 1 measurement" in row["model_detail"]
    clean = write_measurements(tmp_path / "clean.csv", archs, truth)
    code, _, err = cli(capsys, "devices", "register", "clean", "--space", SPACE, "--measurements", str(clean))
    assert code == 0 and "leaves out" not in err


def test_re_registering_says_what_it_replaced_and_show_refuses_an_empty_space(
    home: Path, truth: pd.Series, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    archs = signature(capsys, 10)
    first = write_measurements(tmp_path / "a.csv", archs, truth)
    second = write_measurements(tmp_path / "b.csv", archs[:5], truth)
    assert cli(capsys, "devices", "register", "again", "--space", SPACE, "--measurements", str(first))[0] == 0
    code, _, err = cli(capsys, "devices", "register", "again", "--space", SPACE, "--measurements", str(second))
    assert code == 0 and "again's 10 earlier nasbench201 measurements were replaced by these 5" in err
    code, _, err = cli(capsys, "devices", "show", "again", "--space", "fbnet")
    assert code == 2 and "no measurements in space 'fbnet'" in err


def test_adding_measurements_keeps_the_registered_ones(
    home: Path, truth: pd.Series, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`devices add`: the device is then predicted as a signature of all its measurements is; a retry under one
    request id writes nothing; re-registering replaces the registered measurements only, and says so."""
    archs = signature(capsys, 10)
    first, extra = archs[:5], archs[5:]
    registered = write_measurements(tmp_path / "first.csv", first, truth)
    assert cli(capsys, "devices", "register", "grower", "--space", SPACE, "--measurements", str(registered))[0] == 0
    more = write_measurements(tmp_path / "more.csv", extra, truth)
    add = ["devices", "add", "grower", "--space", SPACE, "--measurements", str(more), "--request-id", "run-7",
           "--environment", '{"runtime": "onnxruntime 1.19", "threads": 2}', "--format", "json"]
    code, out, err = cli(capsys, *add)
    assert code == 0, err
    assert json.loads(out) == [{"name": "grower", "space": SPACE, "n_measurements": 10, "inserted": 5, "replaced": 0,
                                "duplicate_request": False, "model_refitted": True}]
    code, out, err = cli(capsys, *add)
    assert code == 0 and json.loads(out)[0]["duplicate_request"] is True and "nothing was written" in err

    query = tmp_path / "query.txt"
    query.write_text("\n".join(a for a in truth.index[:200] if a not in set(archs)) + "\n")
    everything = write_measurements(tmp_path / "all.csv", archs, truth)
    by_device = cli(capsys, "predict", "--space", SPACE, "--device", "grower", "--archs", str(query))
    by_signature = cli(capsys, "predict", "--space", SPACE, "--signature", str(everything), "--archs", str(query))
    assert by_device[0] == 0 and by_device[1] == by_signature[1]

    code, _, err = cli(capsys, "devices", "register", "grower", "--space", SPACE, "--measurements", str(registered))
    assert code == 0 and "the 5 other archs added with `devices add` stay (10 in all)" in err


@pytest.mark.parametrize(
    "rows, extra, code, needle",
    [
        ("{arch},-1\n", [], 2, "row 2"),
        ("", [], 2, "at least 1 are needed"),
        ("{arch},3.5\n", ["--environment", "[1, 2]"], 2, "--environment must be a JSON object"),
        ("{arch},3.5\n", ["--environment", "{oops"], 2, "--environment is not valid JSON"),
    ],
)
def test_bad_additions_exit_2_and_write_nothing(home: Path, truth: pd.Series, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str], rows: str, extra: list[str],
                                                code: int, needle: str) -> None:
    registered = write_measurements(tmp_path / "m.csv", list(truth.index[:5]), truth)
    assert cli(capsys, "devices", "register", "steady", "--space", SPACE, "--measurements", str(registered))[0] == 0
    bad = tmp_path / "bad.csv"
    bad.write_text("arch,latency_ms\n" + rows.format(arch=truth.index[7]))
    got, out, err = cli(capsys, "devices", "add", "steady", "--space", SPACE, "--measurements", str(bad), *extra)
    assert got == code and out == "" and needle in err
    code, out, _ = cli(capsys, "devices", "show", "steady", "--space", SPACE, "--format", "json")
    assert json.loads(out)[0]["n_measurements"] == 5


def test_adding_to_an_unknown_device_names_it(home: Path, truth: pd.Series, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    more = write_measurements(tmp_path / "more.csv", list(truth.index[:2]), truth)
    code, out, err = cli(capsys, "devices", "add", "never-registered", "--space", SPACE, "--measurements", str(more))
    assert code == 2 and out == "" and "never-registered" in err


def test_a_bad_device_name_is_refused_before_anything_is_written(tmp_path: Path, truth: pd.Series,
                                                                 capsys: pytest.CaptureFixture[str],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A fresh home: the name is checked before the built-in model would be trained and stored."""
    monkeypatch.setenv("NAS_LATENCY_HOME", str(tmp_path / "fresh"))
    measurements = write_measurements(tmp_path / "m.csv", list(truth.index[:5]), truth)
    code, _, err = cli(capsys, "devices", "register", "bad name!", "--space", SPACE, "--measurements",
                       str(measurements))
    assert code == 2 and "bad name!" in err
    assert not (tmp_path / "fresh").exists() or not any((tmp_path / "fresh").rglob("*.sqlite"))


def test_signature_size_help_states_the_stored_order_length(capsys: pytest.CaptureFixture[str]) -> None:
    from nas_latency.builtin_models import SIGNATURE_ORDER_LENGTH

    with pytest.raises(SystemExit):
        main(["signature", "--help"])
    assert f"at most {SIGNATURE_ORDER_LENGTH}," in capsys.readouterr().out


def test_network_files_are_found_beside_the_list_and_unsupported_operators_can_be_skipped(
    home: Path, truth: pd.Series, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    conv_onnx_model: Callable[..., Any],
) -> None:
    """`@model.onnx` in an --archs file is relative to that file's folder (not the working directory); a model with
    an operator the IR lacks (LeakyRelu) fails, or with --on-unsupported skip is predicted with the skip reported."""
    import onnx

    lists = tmp_path / "lists"
    lists.mkdir()
    onnx.save(conv_onnx_model("LeakyRelu", "leaky"), lists / "Leaky.ONNX")
    (lists / "archs.txt").write_text("@Leaky.ONNX\n")
    archs = signature(capsys, 10)
    measurements = write_measurements(tmp_path / "m.csv", archs, truth)
    monkeypatch.chdir(tmp_path)  # not the list's folder
    base = ["predict", "--space", SPACE, "--signature", str(measurements), "--archs", str(lists / "archs.txt")]
    code, _, err = cli(capsys, *base)
    assert code == 2 and "node 'leaky' (LeakyRelu)" in err and "--on-unsupported skip" in err
    code, out, err = cli(capsys, *base, "--on-unsupported", "skip")
    assert code == 0, err
    assert "skipped 1 unsupported operator(s)" in err and "leaky: LeakyRelu" in err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert rows[0]["arch"] == "@Leaky.ONNX" and float(rows[0]["latency_ms"]) > 0


def test_an_unknown_arch_is_named_with_its_list_and_line(
    home: Path, truth: pd.Series, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    archs = signature(capsys, 10)
    measurements = write_measurements(tmp_path / "m.csv", archs, truth)
    listing = tmp_path / "q.txt"
    listing.write_text(f"{archs[0]}\n\n{archs[1]}\n|nor_conv_3x3~0|+|\n")
    for command in ("predict", "rank"):
        code, _, err = cli(capsys, command, "--space", SPACE, "--signature", str(measurements), "--archs",
                           str(listing))
        assert code == 2 and f"{listing}: line 4: " in err, (command, err)


# ---- choose: the candidate most likely to meet a budget ----------------------------------------------------------
CHOOSER = "chooser"
CHOOSE_BUDGET_MS = 10.0


@pytest.fixture(scope="module")
def chooser(home: Path, truth: pd.Series, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The held-out device registered from its 10 signature measurements; the measurements' CSV."""
    from nas_latency.predictor import Predictor

    with Predictor() as predictor:
        archs = predictor.signature_set(SPACE, 10)
    path = write_measurements(tmp_path_factory.mktemp("chooser") / "m.csv", archs, truth)
    assert main(["devices", "register", CHOOSER, "--space", SPACE, "--measurements", str(path)]) == 0
    return path


def test_the_choice_over_every_bundled_arch_is_the_most_likely_within_the_budget(
        chooser: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from nas_latency.predictor import Predictor

    code, out, err = cli(capsys, "choose", "--space", SPACE, "--device", CHOOSER, "--max-latency-ms",
                         str(CHOOSE_BUDGET_MS), "--format", "json", "--limit", "50")
    assert code == 0, err
    document = json.loads(out)
    accuracy = nb201_accuracy("cifar10_valid_acc")
    archs = sorted(accuracy)
    with Predictor() as predictor:
        predicted, log_std = predictor.predict_with_uncertainty(SPACE, archs, device=CHOOSER)
        measured = predictor.device_measurements(CHOOSER, SPACE).as_mapping()
    # the 10 measured archs are taken at their measurements
    latency, judged_std, is_measured = with_measurements(archs, predicted, log_std, measured)
    assert is_measured.sum() == 10 and document["n_measured"] == 10
    acc = np.array([accuracy[a] for a in archs])
    expected = most_likely_to_meet(acc, latency, judged_std, CHOOSE_BUDGET_MS)
    assert expected is not None
    chosen = document["chosen"]
    assert chosen["arch"] == archs[expected] and latency[expected] <= CHOOSE_BUDGET_MS
    log_p = log_target_probabilities(acc, latency, judged_std, CHOOSE_BUDGET_MS)
    assert chosen["p_meets_target"] == pytest.approx(math.exp(log_p[expected]), abs=1e-6)
    assert document["n_candidates"] == len(archs) == 15625
    assert document["n_predicted_within"] == int(np.sum(latency <= CHOOSE_BUDGET_MS))
    ranking = document["ranking"]
    assert len(ranking) == 50 and ranking[0] == chosen
    assert [r["rank"] for r in ranking] == list(range(1, 51))
    probabilities = [r["p_meets_target"] for r in ranking]
    assert probabilities == sorted(probabilities, reverse=True)
    assert all((r["predicted_ms"] if r["measured_ms"] is None else r["measured_ms"]) <= CHOOSE_BUDGET_MS
               for r in ranking)
    # beside it: the most accurate arch predicted within the budget
    within = latency <= CHOOSE_BUDGET_MS
    top = document["most_accurate_predicted_within"]
    assert top["accuracy"] == pytest.approx(acc[within].max())
    assert top["p_meets_target"] <= chosen["p_meets_target"]


def test_a_measured_candidate_is_taken_at_its_measurement(home: Path, chooser: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """Choose, measure the choice over the budget, `devices add` it: the next choice is another arch, and the
    measured one is out of the ranking; measured within the budget, it is certain to fit."""
    assert main(["devices", "register", "looper", "--space", SPACE, "--measurements", str(chooser)]) == 0
    capsys.readouterr()
    choose = ["choose", "--space", SPACE, "--device", "looper", "--max-latency-ms", str(CHOOSE_BUDGET_MS),
              "--format", "json", "--limit", "0"]
    code, out, err = cli(capsys, *choose)
    assert code == 0, err
    first = json.loads(out)["chosen"]
    assert first["measured_ms"] is None
    over = write_measurements(tmp_path / "over.csv", [first["arch"]], pd.Series({first["arch"]: 2 * CHOOSE_BUDGET_MS}))
    assert cli(capsys, "devices", "add", "looper", "--space", SPACE, "--measurements", str(over))[0] == 0
    code, out, err = cli(capsys, *choose)
    assert code == 0, err
    second = json.loads(out)
    assert second["chosen"]["arch"] != first["arch"] and second["n_measured"] == 11
    assert first["arch"] not in {r["arch"] for r in second["ranking"]}
    fits = write_measurements(tmp_path / "fits.csv", [first["arch"]], pd.Series({first["arch"]: CHOOSE_BUDGET_MS / 2}))
    assert cli(capsys, "devices", "add", "looper", "--space", SPACE, "--measurements", str(fits))[0] == 0
    code, out, err = cli(capsys, *choose)
    assert code == 0, err
    row = next(r for r in json.loads(out)["ranking"] if r["arch"] == first["arch"])
    assert row["measured_ms"] == CHOOSE_BUDGET_MS / 2 and row["p_within_budget"] == 1.0


def test_given_candidates_and_an_inline_signature(chooser: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    fast, accurate = ("|none~0|+|nor_conv_1x1~0|none~1|+|skip_connect~0|none~1|avg_pool_3x3~2|",
                       "|none~0|+|none~0|none~1|+|nor_conv_3x3~0|none~1|none~2|")
    candidates = tmp_path / "c.csv"
    candidates.write_text(f"arch,accuracy\n{fast},90.0\n{accurate},90.3\n")
    code, out, err = cli(capsys, "choose", "--space", SPACE, "--signature", str(chooser), "--max-latency-ms",
                         "30", "--candidates", str(candidates), "--format", "csv")
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert list(rows[0]) == ["rank", "arch", "accuracy", "predicted_ms", "measured_ms", "log_std", "p_within_budget",
                             "p_meets_target"]
    assert {r["arch"] for r in rows} == {fast, accurate}  # both predicted far under 30 ms: both near certain
    assert all(float(r["p_within_budget"]) > 0.99 for r in rows)
    # 0.3 points apart, within the gap: neither counts against the other; both surely within: a tie, and the
    # more accurate goes first
    assert all(r["p_meets_target"] == r["p_within_budget"] for r in rows)
    assert [r["arch"] for r in rows] == [accurate, fast]
    assert float(rows[0]["predicted_ms"]) > float(rows[1]["predicted_ms"])
    code, out, _ = cli(capsys, "choose", "--space", SPACE, "--device", CHOOSER, "--max-latency-ms", "30",
                       "--candidates", str(candidates))
    assert code == 0 and "\nchosen: " + accurate in out
    assert "most accurate predicted within the budget: " + accurate in out


@pytest.mark.parametrize(("content", "message"), [
    ("arch,latency_ms\n", r"row 1: header must be `arch,accuracy`"),
    ("arch,accuracy\n|none~0|+|none~0|none~1|+|none~0|none~1|none~2|,nan\n", r"row 2: accuracy must be finite"),
    ("arch,accuracy\n|none~0|+|none~0|none~1|+|none~0|none~1|none~2|,x\n", r"row 2: accuracy 'x' is not a number"),
    ("arch,accuracy\n|none~0|+|none~0|none~1|+|none~0|none~1|none~2|,1\n"
     "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|,2\n", r"row 3: arch .* repeats row 2"),
    ("arch,accuracy\nnot-an-arch,1\n", r"row 2: nasbench201 architecture 'not-an-arch'"),
    ("arch,accuracy\n", r"no candidates"),
])
def test_bad_candidates_are_named_by_row_and_exit_2(chooser: Path, tmp_path: Path, content: str, message: str,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "c.csv"
    path.write_text(content)
    code, out, err = cli(capsys, "choose", "--space", SPACE, "--device", CHOOSER, "--max-latency-ms", "30",
                         "--candidates", str(path))
    assert code == 2 and out == ""
    assert pd.Series([err]).str.contains(message).all(), err


@pytest.mark.parametrize(("argv", "code", "message"), [
    (["--max-latency-ms", "1"], 1, "no candidate is predicted within 1.0 ms on chooser: the fastest is predicted at"),
    (["--max-latency-ms", "0"], 2, "--max-latency-ms must be a positive number"),
    (["--max-latency-ms", "10", "--accuracy-gap", "-1"], 2, "--accuracy-gap must be >= 0"),
    (["--max-latency-ms", "10", "--limit", "-1"], 2, "--limit must be >= 0"),
])
def test_bad_requests_say_what_is_wrong(chooser: Path, argv: list[str], code: int, message: str,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    got, out, err = cli(capsys, "choose", "--space", SPACE, "--device", CHOOSER, *argv)
    assert (got, out) == (code, "") and message in err, err


def test_choose_needs_candidates_in_other_spaces(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "choose", "--space", "fbnet", "--device", "nope", "--max-latency-ms", "10")
    assert code == 2 and "--candidates is required for fbnet: only nasbench201 bundles accuracies" in err
