"""``rank_report``: sorting by predicted latency and agreement with measurements, on hand-worked cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nas_latency.errors import InvalidInputError
from nas_latency.evaluate.ranking import rank_report

ARCHS = ["a", "b", "c", "d", "e"]


def test_sorted_by_prediction_with_stable_ties() -> None:
    report = rank_report(ARCHS, [3.0, 1.0, 2.0, 1.0, 5.0])
    assert [r.arch for r in report.ranking] == ["b", "d", "c", "a", "e"]
    assert [r.rank for r in report.ranking] == [1, 2, 3, 4, 5]
    assert report.n_measured == 0
    assert all(v is None for v in report.metrics.values())
    assert report.not_applicable["spearman"] == "no measured latencies given"


def test_perfect_prediction_scores_one() -> None:
    measured = np.array([3.0, 1.0, 2.0, 4.0, 5.0])
    accuracy = np.array([70.0, 60.0, 65.0, 80.0, 75.0])
    report = rank_report(ARCHS, measured * 2, measured, accuracy, top_k=2)
    assert report.metrics["spearman"] == pytest.approx(1.0)
    assert report.metrics["kendall"] == pytest.approx(1.0)
    assert report.metrics["top2_overlap"] == pytest.approx(1.0)
    assert report.metrics["pareto_recall"] == pytest.approx(1.0)
    front = {r.arch for r in report.ranking if r.on_true_front}
    assert front == {"b", "c", "a", "d"}  # e is slower and less accurate than d


def test_partial_measurements_and_no_accuracy() -> None:
    measured = [1.0, math.nan, 3.0, 2.0, math.nan]
    report = rank_report(ARCHS, [1.0, 9.0, 2.0, 3.0, 0.5], measured, top_k=2,
                         accuracy_note="not applicable: no accuracies for fbnet")
    assert report.n_measured == 3 and report.n_candidates == 5
    assert report.metrics["spearman"] == pytest.approx(0.5)
    assert report.metrics["top2_overlap"] == pytest.approx(0.5)  # truly fastest a,d; predicted a,c
    assert report.metrics["pareto_recall"] is None
    assert report.not_applicable["pareto_recall"] == "not applicable: no accuracies for fbnet"
    assert report.ranking[0].arch == "e" and report.ranking[0].measured_ms is None


def test_top_k_larger_than_measured_is_explained() -> None:
    report = rank_report(ARCHS[:3], [1.0, 2.0, 3.0], [1.0, 2.0, 3.0], top_k=10)
    assert report.metrics["top10_overlap"] is None
    assert "exceeds" in report.not_applicable["top10_overlap"]
    rows = report.metric_rows()
    assert rows[0] == {"metric": "candidates", "value": 3, "note": ""}


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"archs": [], "predicted_ms": []}, "no architectures"),
        ({"archs": ["a", "a"], "predicted_ms": [1, 2]}, "distinct"),
        ({"archs": ["a", "b"], "predicted_ms": [1]}, "predicted_ms"),
        ({"archs": ["a", "b"], "predicted_ms": [1, np.nan]}, "finite"),
        ({"archs": ["a", "b"], "predicted_ms": [1, 2], "measured_ms": [0, 1]}, "> 0"),
        ({"archs": ["a", "b"], "predicted_ms": [1, 2], "top_k": 0}, "top_k"),
    ],
)
def test_bad_inputs(kwargs: dict, match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        rank_report(**kwargs)
