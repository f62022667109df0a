"""``nas-latency evaluate`` and ``nas-latency rank``: results on stdout, reports in --out, exit codes 0/1/2."""

from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from nas_latency.cli import main
from nas_latency.commands.evaluate import split_specs
from nas_latency.errors import InvalidInputError


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# ---- evaluate ---------------------------------------------------------------------------------------------------
def test_evaluate_tiny_run_writes_the_report(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    start = time.perf_counter()
    code, out, err = run_cli(capsys, "evaluate", "--space", "ganesan_mobile", "--budget", "5", "--models", "nnls_mix",
                             "--seeds", "1", "--holdout", "GM1901,MotoG3", "--out", str(tmp_path))
    assert code == 0, err
    assert time.perf_counter() - start < 60
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["model", "set", "device", "n_scored"]
    # the FLOPs baseline is always included, before the requested models
    assert any(line.startswith("flops_xdev") for line in lines)
    assert any(line.startswith("nnls_mix") and "GM1901_0" in line for line in lines)
    assert "MEAN" in out and "WORST" in out
    assert "excluded" in err and "efficientnet_b0?" in err  # networks without layers are reported
    for suffix in ("md", "json", "png"):
        assert (tmp_path / f"evaluate_ganesan_mobile_k5.{suffix}").is_file()


def test_evaluate_on_run_medians_says_so_in_its_report(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, err = run_cli(capsys, "evaluate", "--space", "ganesan_mobile", "--budget", "5", "--models", "nnls_mix",
                             "--seeds", "1", "--holdout", "HD1901", "--run-statistic", "median", "--out", str(tmp_path),
                             "--no-plot", "--format", "json")
    assert code == 0, err
    document = json.loads(out)
    assert document["run_statistic"] == "median"
    stem = tmp_path / "evaluate_ganesan_mobile_k5_run_median"
    assert json.loads(stem.with_suffix(".json").read_text())["run_statistic"] == "median"
    assert "median of each architecture's bundled runs" in stem.with_suffix(".md").read_text()


def test_evaluate_json_on_nasbench201_has_help_set(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, err = run_cli(capsys, "evaluate", "--space", "nasbench201", "--budget", "10", "--models",
                             "flops_xdev", "--seeds", "1", "--holdout", "pixel3", "--out", str(tmp_path),
                             "--no-plot", "--format", "json")
    assert code == 0, err
    document = json.loads(out)
    assert document["models"] == ["flops_xdev"]
    assert set(document["scoring_sets"]) == {"help", "all"}
    assert {r["set"] for r in document["per_device"]} == {"help", "all"}
    assert document["files"]["png"] is None
    assert not (tmp_path / "evaluate_nasbench201_k10.png").exists()
    assert json.loads((tmp_path / "evaluate_nasbench201_k10.json").read_text())["space"] == "nasbench201"


def test_evaluate_retest_scores_second_measurements_of_the_same_networks(capsys: pytest.CaptureFixture[str],
                                                                         tmp_path: Path) -> None:
    code, out, err = run_cli(capsys, "evaluate", "--space", "nasbench201", "--retest", "--format", "json",
                             "--out", str(tmp_path))
    assert code == 0, err
    rows = {r["device"]: r for r in json.loads(out)}
    assert len(rows) == 14 and rows["MEAN"]["n_pairs"] == 13 * 1500
    assert all(r["n_pairs"] == 1500 and 0 <= r["budget_choices_met"] <= 3 for d, r in rows.items() if d != "MEAN")
    assert rows["MEAN"]["budget_choices_met"] == sum(r["budget_choices_met"] for d, r in rows.items() if d != "MEAN")
    assert rows["MEAN"]["spearman"] == pytest.approx(np.mean([r["spearman"] for d, r in rows.items()
                                                              if d != "MEAN"]), abs=1e-3)
    # 1080ti_256 measures a network again to within 0.1 %; the whole-millisecond essential_ph_1 does not
    assert rows["1080ti_256"]["median_abs_log_diff"] < 1e-3 and rows["1080ti_256"]["within_10pct"] == 1.0
    assert rows["essential_ph_1"]["within_10pct"] < 0.6 and rows["essential_ph_1"]["median_abs_log_diff"] > 0.05
    assert "noise_only_within_10pct" in err and not list(tmp_path.iterdir())  # a table, no report files

    code, out, err = run_cli(capsys, "evaluate", "--space", "nasbench201", "--budget", "10", "--models",
                             "flops_xdev", "--seeds", "1", "--holdout", "pixel3", "--out", str(tmp_path),
                             "--no-plot", "--format", "json", "--retest")
    assert code == 0, err
    document = json.loads(out)
    assert set(document["scoring_sets"]) == {"help", "all", "twins"}
    twins = [r for r in document["per_device"] if r["set"] == "twins"]
    assert len(twins) == 1 and 2990 <= twins[0]["n_scored"] <= 3000  # the 3,000 twin archs less the signature's


def test_evaluate_nested_choice_scores_the_model_the_training_devices_choose(capsys: pytest.CaptureFixture[str],
                                                                            tmp_path: Path) -> None:
    code, out, err = run_cli(capsys, "evaluate", "--space", "ganesan_mobile", "--budget", "5", "--models",
                             "nnls_mix,blr", "--seeds", "1", "--holdout", "GM1901", "--nested-choice", "--out",
                             str(tmp_path), "--no-plot", "--format", "json")
    assert code == 0, err
    document = json.loads(out)
    assert document["models"] == ["flops_xdev", "nnls_mix", "blr", "nested_choice"]
    record = document["nested_choices"]["GM1901"]
    assert set(record["inner_spearman"]) == {"nnls_mix", "blr"} and "GM1901_0" not in record["inner_devices"]
    assert record["chosen"] == max(record["inner_spearman"], key=record["inner_spearman"].get)
    rows = {r["model"]: r for r in document["per_device"] if r["device"] == "GM1901_0"}
    assert rows["nested_choice"]["spearman"] == rows[record["chosen"]]["spearman"]
    assert "## Nested choice" in (tmp_path / "evaluate_ganesan_mobile_k5.md").read_text()


def test_evaluate_exclude_same_kind_names_its_training_devices(capsys: pytest.CaptureFixture[str],
                                                               tmp_path: Path) -> None:
    code, out, err = run_cli(capsys, "evaluate", "--space", "nasbench201", "--budget", "10", "--models",
                             "flops_xdev", "--seeds", "1", "--holdout", "titanx_256", "--out", str(tmp_path),
                             "--no-plot", "--format", "json", "--exclude-same", "kind")
    assert code == 0, err
    document = json.loads(out)
    assert document["protocol"] == "leave-same-kind-out" and document["exclude_same"] == "kind"
    training = document["training_devices"]["titanx_256"]
    assert training and not any(d.startswith(("1080ti", "titanx")) for d in training)
    stem = tmp_path / "evaluate_nasbench201_k10_without_same_kind"
    assert json.loads(stem.with_suffix(".json").read_text())["exclude_same"] == "kind"
    assert "less every device of the same `kind`" in stem.with_suffix(".md").read_text()


def test_evaluate_ceiling_prints_per_device_and_mean(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "evaluate", "--space", "ganesan_mobile", "--ceiling", "--format", "json")
    assert code == 0, err
    rows = json.loads(out)
    devices = [r["device"] for r in rows]
    assert devices[-1] == "MEAN" and len(devices) > 50
    assert {r["set"] for r in rows} == {"all"}
    assert rows[-1]["spearman"] == pytest.approx(np.mean([r["spearman"] for r in rows[:-1]]), abs=1e-3)
    assert 0.5 < rows[-1]["spearman"] <= 1.0
    code, _, err = run_cli(capsys, "evaluate", "--space", "ganesan_mobile")
    assert code == 2 and "--budget K is required" in err


def test_evaluate_drift_prints_per_device_and_mean(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "evaluate", "--space", "fbnet", "--drift", "--format", "json")
    assert code == 0, err
    rows = {r["device"]: r for r in json.loads(out)}
    assert list(rows)[-1] == "MEAN" and len(rows) == 14
    assert rows["MEAN"]["n_measured"] == 13 * 5000
    # essential_ph_1's FBNet errors run together along arch_id (a drift), pixel3's do not
    assert rows["essential_ph_1"]["lag1_autocorrelation"] > 0.5 and rows["essential_ph_1"]["drift_share"] > 0.3
    assert abs(rows["pixel3"]["lag1_autocorrelation"]) < 0.2 and rows["pixel3"]["drift_share"] < 0.1
    assert "running median over 101" in err


def test_evaluate_scored_against_drift_removed_says_so(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    argv = ["evaluate", "--space", "fbnet", "--budget", "10", "--models", "flops_xdev", "--seeds", "1", "--holdout",
            "essential_ph_1", "--out", str(tmp_path), "--no-plot", "--format", "json"]
    code, out, err = run_cli(capsys, *argv)
    assert code == 0, err
    measured = json.loads(out)
    code, out, err = run_cli(capsys, *argv, "--score-against", "drift_removed")
    assert code == 0, err
    removed = json.loads(out)
    assert (measured["scored_against"], removed["scored_against"]) == ("measured", "drift_removed")
    # the same signature onboarded both runs; only the latencies scored against differ
    assert measured["signatures"] == removed["signatures"]
    assert measured["scores"][0]["spearman"] != pytest.approx(removed["scores"][0]["spearman"], abs=1e-3)
    stem = tmp_path / "evaluate_fbnet_k10_scored_drift_removed"
    assert json.loads(stem.with_suffix(".json").read_text())["scored_against"] == "drift_removed"
    assert "Scored against: `drift_removed`" in stem.with_suffix(".md").read_text()


def _motog3_with(capsys: pytest.CaptureFixture[str], tmp_path: Path, budget: int, models: str, flag: str,
                 factor: float) -> tuple[dict[str, Any], dict[str, float], str]:
    """``evaluate`` of ``models`` with MotoG3 held out (seed 0) and ``flag`` set to ``factor``: the JSON document,
    MotoG3_0's R² per model, and the Markdown report (found by the stem the flag gives it)."""
    code, out, err = run_cli(capsys, "evaluate", "--space", "ganesan_mobile", "--budget", str(budget), "--models",
                             models, "--seeds", "1", "--holdout", "MotoG3", "--out", str(tmp_path), "--no-plot",
                             "--format", "json", flag, f"{factor:g}")
    assert code == 0, err
    document = json.loads(out)
    scores = {s["model"]: s["r2"] for s in document["scores"] if s["device"] == "MotoG3_0"}
    suffix = {"--scale-held-out": "held_out_x", "--spike-held-out": "spike_x", "--noise-held-out": "noise_"}[flag]
    markdown = (tmp_path / f"evaluate_ganesan_mobile_k{budget}_{suffix}{factor:g}.md").read_text()
    return document, scores, markdown


def test_evaluate_scale_held_out_onboards_and_scores_a_faster_or_slower_device(capsys: pytest.CaptureFixture[str],
                                                                             tmp_path: Path) -> None:
    """A device 100 and 1000 times slower than measured: ``clamp_speed`` gives the same scores for both (both lie
    beyond the training devices' range), the plain mix does not; the report names the factor."""
    scores: dict[float, dict[str, float]] = {}
    for factor in (100.0, 1000.0):
        document, scores[factor], markdown = _motog3_with(capsys, tmp_path, 5, "nnls_mix,clamp_speed(nnls_mix)",
                                                          "--scale-held-out", factor)
        assert document["held_out_scale"] == factor
        assert f"multiplied by {factor:g}: the same device, slower" in markdown
    assert scores[100.0]["clamp_speed(nnls_mix)"] == pytest.approx(scores[1000.0]["clamp_speed(nnls_mix)"], abs=1e-9)
    assert scores[100.0]["nnls_mix"] != pytest.approx(scores[1000.0]["nnls_mix"], abs=1e-3)


def test_evaluate_spike_held_out_spikes_one_signature_measurement(capsys: pytest.CaptureFixture[str],
                                                                  tmp_path: Path) -> None:
    """One of the held-out phone's ten measurements 3 and 5 times what it measured: ``drop_outliers`` leaves it out
    both times and scores the same, the plain mix follows it; the report names the factor."""
    scores: dict[float, dict[str, float]] = {}
    for factor in (3.0, 5.0):
        document, scores[factor], markdown = _motog3_with(capsys, tmp_path, 10, "nnls_mix,drop_outliers(nnls_mix)",
                                                          "--spike-held-out", factor)
        assert document["held_out_spike"] == factor and document["held_out_scale"] == 1.0
        assert f"measurements (drawn per seed and device) multiplied by {factor:g}" in markdown
    assert scores[3.0]["drop_outliers(nnls_mix)"] == scores[5.0]["drop_outliers(nnls_mix)"]
    assert scores[3.0]["nnls_mix"] > scores[5.0]["nnls_mix"] + 0.01


def test_evaluate_noise_held_out_onboards_from_noisy_measurements(capsys: pytest.CaptureFixture[str],
                                                                  tmp_path: Path) -> None:
    """The held-out phone's ten measurements with timing noise of about ±2 % and ±30 %: the mix onboarded from the
    noisier ones scores worse against the same truth; the report names sigma."""
    scores: dict[float, dict[str, float]] = {}
    for sigma in (0.02, 0.3):
        document, scores[sigma], markdown = _motog3_with(capsys, tmp_path, 10, "nnls_mix", "--noise-held-out", sigma)
        assert document["held_out_noise"] == sigma and document["held_out_spike"] == 1.0
        assert f"σ = {sigma:g} and z standard normal" in markdown and f"about ±{100 * sigma:.0f} %" in markdown
    assert scores[0.3]["nnls_mix"] < scores[0.02]["nnls_mix"] - 0.01


def test_evaluate_simulated_devices_holds_out_simulated_accelerators(capsys: pytest.CaptureFixture[str],
                                                                     tmp_path: Path) -> None:
    """Two simulated accelerators held out, onboarded by a model fitted on every bundled phone: scored like any
    held-out device, and the report says what they are."""
    code, out, err = run_cli(capsys, "evaluate", "--space", "ganesan_mobile", "--budget", "5", "--models", "nnls_mix",
                             "--seeds", "1", "--simulated-devices", "2", "--out", str(tmp_path), "--no-plot",
                             "--format", "json")
    assert code == 0, err
    document = json.loads(out)
    assert document["held_out_groups"] == ["simulated"]
    assert {s["device"] for s in document["scores"]} == {"sim0_runs_all", "sim1_prunes"}
    training = document["training_devices"]["simulated"]
    assert len(training) > 60 and not any(d.startswith("sim") for d in training)
    assert document["dataset"]["device_info"]["sim1_prunes"]["kind"] == "simulated accelerator"
    markdown = (tmp_path / "evaluate_ganesan_mobile_k5_simulated_2.md").read_text()
    assert "2 simulated accelerators" in markdown and "sim1_prunes (prunes)" in markdown


def test_evaluate_csv_has_std_columns(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = run_cli(capsys, "evaluate", "--space", "ganesan_mobile", "--budget", "4", "--models", "flops_xdev",
                           "--seeds", "2", "--holdout", "MotoG3", "--out", str(tmp_path), "--no-plot",
                           "--format", "csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert {"spearman", "spearman_std", "r2", "r2_std"} <= set(rows[0])
    assert [r["device"] for r in rows] == ["MotoG3_0", "MEAN", "WORST"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--space", "ganesan_mobile", "--budget", "5", "--models", "no_such_model"], "no_such_model"),
        (["--space", "ganesan_mobile", "--budget", "2"], "at least 3"),
        (["--space", "no_such_space", "--budget", "5"], "no_such_space"),
        (["--space", "ganesan_mobile", "--budget", "5", "--seeds", "0"], "--seeds"),
        (["--space", "ganesan_mobile", "--budget", "500", "--models", "flops_xdev"], "nothing to score"),
        (["--space", "ganesan_mobile", "--budget", "5", "--models", "flops_xdev", "--holdout", "Nokia_3310"],
         "Nokia_3310"),
        (["--space", "ganesan_mobile", "--budget", "5", "--models", "blr(flops"], "unbalanced"),
        (["--space", "fbnet", "--budget", "5", "--run-statistic", "median"], "not its runs"),
        (["--space", "fbnet", "--budget", "5", "--ceiling-model", "lightgbm"], "goes with --ceiling"),
        (["--space", "fbnet", "--ceiling", "--drift"], "give one"),
        (["--space", "fbnet", "--ceiling", "--score-against", "drift_removed"], "goes with a leave-device-out run"),
        (["--space", "fbnet", "--drift", "--score-against", "drift_removed"], "goes with a leave-device-out run"),
        (["--space", "ganesan_mobile", "--drift"], "too few for a drift estimate"),
        (["--space", "ganesan_mobile", "--budget", "5", "--score-against", "drift_removed"], "too few"),
        (["--space", "fbnet", "--retest"], "fbnet has no architectures known to spell the same network twice"),
        (["--space", "fbnet", "--nested-choice"], "--nested-choice goes with a leave-device-out run"),
        (["--space", "fbnet", "--ceiling", "--nested-choice"], "--nested-choice goes with a leave-device-out run"),
        (["--space", "ganesan_mobile", "--budget", "5", "--models", "nnls_mix", "--nested-choice"],
         "needs at least 2 models besides flops_xdev"),
        (["--space", "fbnet", "--budget", "5", "--retest"], "fbnet has no architectures known"),
        (["--space", "nasbench201", "--retest", "--ceiling"], "--retest goes alone"),
        (["--space", "nasbench201", "--retest", "--drift"], "--retest goes alone"),
        (["--space", "nasbench201", "--retest", "--score-against", "drift_removed"], "goes with a leave-device-out"),
        (["--space", "fbnet", "--budget", "5", "--scale-held-out", "0"], "--scale-held-out must be a positive"),
        (["--space", "fbnet", "--budget", "5", "--scale-held-out", "nan"], "--scale-held-out must be a positive"),
        (["--space", "fbnet", "--ceiling", "--scale-held-out", "10"], "--scale-held-out goes with a plain"),
        (["--space", "ganesan_mobile", "--budget", "5", "--models", "nnls_mix,blr", "--nested-choice",
          "--scale-held-out", "10"], "--scale-held-out goes with a plain"),
        (["--space", "fbnet", "--budget", "5", "--spike-held-out", "-1"], "--spike-held-out must be a positive"),
        (["--space", "fbnet", "--drift", "--spike-held-out", "3"], "--spike-held-out goes with a plain"),
        (["--space", "fbnet", "--budget", "5", "--noise-held-out", "-0.1"], "--noise-held-out must be a log"),
        (["--space", "fbnet", "--ceiling", "--noise-held-out", "0.1"], "--noise-held-out goes with a plain"),
        (["--space", "fbnet", "--budget", "5", "--simulated-devices", "-1"], "--simulated-devices must be a number"),
        (["--space", "fbnet", "--budget", "5", "--simulated-devices", "2", "--holdout", "pixel3"],
         "not with --holdout"),
        (["--space", "fbnet", "--simulated-devices", "2"], "not with --budget"),
    ],
)
def test_evaluate_bad_arguments_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str],
                                       message: str) -> None:
    code, out, err = run_cli(capsys, "evaluate", *argv, "--out", str(tmp_path), "--no-plot")
    assert code == 2
    assert out == ""
    assert message in err
    assert not list(tmp_path.iterdir())  # nothing written on bad input


def test_split_specs_respects_parentheses() -> None:
    assert split_specs("blr, geo_ensemble(nnls_mix,blr),blr,") == ["blr", "geo_ensemble(nnls_mix,blr)"]
    with pytest.raises(InvalidInputError):
        split_specs("a)")


# ---- rank -------------------------------------------------------------------------------------------------------
def _write_nb201_csvs(tmp_path: Path) -> tuple[Path, Path]:
    from nas_latency.evaluate.datasets import load_latency_dataset

    dataset = load_latency_dataset("nasbench201")
    y = dataset.latency_of("gold_6240")
    rng = np.random.default_rng(1)
    signature, candidates = rng.choice(len(y), 10, replace=False), rng.choice(len(y), 60, replace=False)
    sig = tmp_path / "signature.csv"
    sig.write_text("arch,latency_ms\n" + "".join(f"{dataset.archs[i]},{y[i]}\n" for i in signature))
    measured = tmp_path / "measured.csv"
    measured.write_text("arch,latency_ms\n" + "".join(f"{dataset.archs[i]},{y[i]}\n" for i in candidates))
    return sig, measured


def test_rank_reports_agreement_with_measurements(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    sig, measured = _write_nb201_csvs(tmp_path)
    code, out, err = run_cli(capsys, "rank", "--space", "nasbench201", "--signature", str(sig), "--measured",
                             str(measured), "--top-k", "5", "--store", f"sqlite:///{tmp_path / 'store.sqlite'}",
                             "--format", "json")
    assert code == 0, err
    document = json.loads(out)
    assert document["n_candidates"] == 60 and document["n_measured"] == 60
    assert document["metrics"]["spearman"] > 0.5
    assert 0 <= document["metrics"]["top5_overlap"] <= 1
    assert document["metrics"]["pareto_recall"] is not None  # NB201 accuracies are bundled
    predicted = [r["predicted_ms"] for r in document["ranking"]]
    assert predicted == sorted(predicted)


def test_rank_bad_input_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    sig, _ = _write_nb201_csvs(tmp_path)
    bad = tmp_path / "bad.csv"
    bad.write_text("arch,latency\nx,1\n")
    code, _, err = run_cli(capsys, "rank", "--space", "nasbench201", "--signature", str(sig), "--measured", str(bad),
                           "--store", f"sqlite:///{tmp_path / 'store.sqlite'}")
    assert code == 2 and "header" in err
    code, _, err = run_cli(capsys, "rank", "--space", "nasbench201", "--signature", str(sig), "--top-k", "0")
    assert code == 2 and "--top-k" in err
