"""Markdown + JSON reports and the predicted-vs-measured PNG of a small leave-device-out run."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from nas_latency.evaluate.plot import plot_predicted_vs_measured
from nas_latency.evaluate.datasets import load_latency_dataset
from nas_latency.evaluate.protocols import leave_device_out
from nas_latency.evaluate.results import EvaluationResult
from nas_latency.evaluate.report import render_markdown, report_stem, result_document, write_report
from nas_latency.ir import FeatureMatrix
from nas_latency.models.base import CrossDeviceModel, DeviceAdaptation

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class LogMeanModel(CrossDeviceModel):
    """Per-arch mean log latency of the training devices, shifted per device (features: the row position)."""

    kind = "test_report_log_mean"

    def __init__(self) -> None:
        pass

    def fit(self, features: FeatureMatrix, latency_ms: np.ndarray) -> "LogMeanModel":
        self.log_mean_ = np.nanmean(np.log(self._validate_table(features, latency_ms)), axis=1)
        self._remember_schema(features)
        return self

    def _adapt(self, X: np.ndarray, latency_ms: np.ndarray) -> DeviceAdaptation:
        shift = np.mean(np.log(latency_ms) - self.log_mean_[X[:, 0].astype(np.intp)])
        return DeviceAdaptation(self.kind, self.feature_schema_hash_, len(latency_ms), {"shift": np.array([shift])})

    def _predict(self, X: np.ndarray, adaptation: DeviceAdaptation) -> np.ndarray:
        return np.exp(self.log_mean_[X[:, 0].astype(np.intp)] + adaptation.arrays["shift"][0])

    def _learned_arrays(self) -> dict[str, np.ndarray]:
        return {"log_mean": self.log_mean_}

    def _restore(self, arrays, extra) -> None:  # type: ignore[no-untyped-def]
        self.log_mean_ = arrays["log_mean"]


class ConstantModel(LogMeanModel):
    """The same latency everywhere: rank metrics are undefined (NaN) and must be reported, not crash."""

    kind = "test_report_constant"

    def _predict(self, X: np.ndarray, adaptation: DeviceAdaptation) -> np.ndarray:
        return np.full(X.shape[0], 5.0)


class UncertainModel(LogMeanModel):
    """LogMeanModel with a constant predictive standard deviation of ln latency."""

    kind = "test_report_uncertain"

    def _predict_log_std(self, X: np.ndarray, adaptation: DeviceAdaptation) -> np.ndarray:
        return np.full(X.shape[0], 0.1)


def _features(dataset) -> FeatureMatrix:  # type: ignore[no-untyped-def]
    return FeatureMatrix(("row",), np.arange(len(dataset.archs), dtype=np.float64)[:, None], tuple(dataset.archs))


@pytest.fixture(scope="module")
def ganesan_result() -> EvaluationResult:
    dataset = load_latency_dataset("ganesan_mobile")
    return leave_device_out(dataset, {"mean": LogMeanModel, "const": ConstantModel}, budget=5, seeds=[0, 1],
                            features=_features(dataset), holdout=["GM1901", "MotoG3"])


@pytest.fixture(scope="module")
def nb201_result() -> EvaluationResult:
    dataset = load_latency_dataset("nasbench201")
    return leave_device_out(dataset, {"mean": LogMeanModel}, budget=10, seeds=[0], features=_features(dataset),
                            holdout=["pixel3"])


def test_report_files_have_the_expected_sections(ganesan_result: EvaluationResult, tmp_path: Path) -> None:
    files = write_report(ganesan_result, tmp_path / "out")
    stem = report_stem("ganesan_mobile", 5)
    assert files.markdown == tmp_path / "out" / f"{stem}.md"
    assert files.json.name == f"{stem}.json" and files.png is not None and files.png.name == f"{stem}.png"
    text = files.markdown.read_text()
    for heading in ("# Leave-device-out evaluation: ganesan_mobile, K = 5", "## Setup", "## Excluded architectures",
                    "## Summary (mean ± std over 2 signature seeds)", "## Per device (mean ± std over seeds)",
                    "### `mean`, all", "### `const`, all", "## Predicted vs measured", "## Signatures", "## Timing"):
        assert heading in text, heading
    # the four networks without layer rows are named, with the reason
    for name in ("efficientnet_b0?", "efficientnet_b3?"):
        assert name in text
    assert "no layer rows" in text
    assert "n/a" in text  # the constant model's undefined rank correlation
    for device in ganesan_result.held_out_devices:
        assert f"| {device} |" in text
    assert files.png.read_bytes()[:8] == PNG_MAGIC
    assert f"]({files.png.name})" in text


def test_json_document_is_strict_json(ganesan_result: EvaluationResult, tmp_path: Path) -> None:
    files = write_report(ganesan_result, tmp_path, plot=False)
    assert files.png is None
    document = json.loads(files.json.read_text())
    assert document["space"] == "ganesan_mobile" and document["budget"] == 5 and document["seeds"] == [0, 1]
    assert document["models"] == ["mean", "const"] and document["best_model"] == "mean"
    assert document["held_out_groups"] == ["GM1901", "MotoG3"]
    assert [e["arch_id"] for e in document["dataset"]["excluded_archs"]] == [118, 119, 120, 121]
    assert document["dataset"]["groups"]["GM1901_0"] == "GM1901"
    assert document["files"] == {"markdown": files.markdown.name, "json": files.json.name, "png": None}
    const = next(r for r in document["summary"] if r["model"] == "const")
    assert const["spearman_mean"] is None  # NaN becomes null
    mean = next(r for r in document["summary"] if r["model"] == "mean")
    assert 0 < mean["spearman_mean"] <= 1
    n_devices = len(ganesan_result.held_out_devices)
    assert len(document["scores"]) == 2 * 2 * n_devices  # models x seeds x devices (one scoring set)
    assert set(document["signatures"]) == {"0", "1"}
    assert "## Predicted vs measured" not in files.markdown.read_text()


def test_nb201_report_has_help_and_all_sets(nb201_result: EvaluationResult) -> None:
    text = render_markdown(nb201_result)
    assert "### help: HELP query set (index 900–1899" in text
    assert "### all: all architectures except the signature archs" in text
    assert "None: every measured architecture is evaluated." in text
    document = result_document(nb201_result)
    assert set(document["scoring_sets"]) == {"help", "all"}
    sets = {r["set"] for r in document["per_device"]}
    assert sets == {"help", "all"}


def test_plot_skips_points_log_axes_cannot_show(tmp_path: Path) -> None:
    measured = {"a": np.array([1.0, 2.0, 4.0, 8.0]), "b": np.array([1.0, 0.0, 3.0, np.nan])}
    predicted = {"a": np.array([1.1, 2.5, 3.0, 9.0]), "b": np.array([1.0, 1.0, -1.0, 2.0])}
    path = plot_predicted_vs_measured(tmp_path / "p.png", measured, predicted, highlight={"a": [0, 1]}, title="t")
    assert path.read_bytes()[:8] == PNG_MAGIC


def test_summary_means_are_finite_for_the_real_model(ganesan_result: EvaluationResult) -> None:
    row = next(r for r in ganesan_result.summary() if r["model"] == "mean")
    assert all(math.isfinite(row[f"{k}_mean"]) for k in ("spearman", "kendall", "mape_pct", "within_10pct", "r2"))


def test_predictive_intervals_are_reported_only_for_models_that_give_them(ganesan_result: EvaluationResult) -> None:
    assert ganesan_result.calibration() == [] and "## Predictive intervals" not in render_markdown(ganesan_result)
    dataset = load_latency_dataset("ganesan_mobile")
    result = leave_device_out(dataset, {"mean": LogMeanModel, "uncertain": UncertainModel}, budget=5, seeds=[0],
                              features=_features(dataset), holdout=["MotoG3"])
    text = render_markdown(result)
    assert "## Predictive intervals" in text and "| `uncertain` | all |" in text and "| `mean` | all |" not in \
        text.split("## Predictive intervals")[1].split("##")[0]
    [row] = result_document(result)["calibration"]
    assert row["model"] == "uncertain" and 0 <= row["coverage_68"] <= row["coverage_95"] <= 1
    assert row["median_std_log"] == pytest.approx(0.1)
