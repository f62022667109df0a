"""A per-choice latency table of an NNI model space, for one-shot (differentiable) NAS.

ProxylessNAS and FBNet price an architecture as the sum of per-choice latencies. :func:`build_latency_table`
fits exactly that model to *whole-network* predictions: it profiles samples of the space (all of them when the
space is small enough, else a seeded uniform sample) with any NNI profiler -- normally a
:class:`~nas_latency.nni.profiler.LatencyProfiler`, so the table comes from the device's predicted latencies,
embedded or through the server -- and solves least squares for

    latency_ms(sample) ≈ base_ms + Σ_label latency_ms[label][sample[label]]

Each label's entries are shifted so its cheapest choice costs 0 ms (the shift goes into ``base_ms``), so an entry
reads "extra ms over the cheapest choice of this label". How well the additive model fits is reported
(``rmse_ms``, ``r2`` over the profiled samples); interactions between choices (a ``none`` edge that cuts a path
off) are what it cannot express.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from nas_latency.errors import InvalidInputError
from nas_latency.nni._compat import import_nni

log = logging.getLogger(__name__)

import_nni()
from nni.mutable import Categorical  # noqa: E402
from nni.nas.profiler import Profiler  # noqa: E402

TABLE_FORMAT_VERSION = 1
DEFAULT_TABLE_SAMPLES = 512


@dataclass(frozen=True)
class LatencyTable:
    """``latency_ms(sample) ≈ base_ms + Σ_label latency_ms[label][index of sample[label] in values[label]]``."""

    #: the choice labels, in the order of ``model_space.simplify()``
    labels: tuple[str, ...]
    #: label → its candidate values, in the mutable's order (the order of DARTS' architecture parameters)
    values: Mapping[str, tuple[Any, ...]]
    #: label → extra latency (ms) of each candidate over the label's cheapest one, aligned with ``values``
    latency_ms: Mapping[str, tuple[float, ...]]
    #: latency (ms) with every label at its cheapest candidate, as the additive model sees it
    base_ms: float
    #: samples the table was fitted on, and whether they were all of the space
    n_samples: int
    exhaustive: bool
    #: fit of the additive model on those samples: root-mean-square error (ms) and R²
    rmse_ms: float
    r2: float
    #: what produced the latencies (the profiler's repr)
    source: str = ""

    def index(self, label: str, value: Any) -> int:
        try:
            return self.values[label].index(value)
        except KeyError:
            raise InvalidInputError(f"latency table has no label {label!r}; labels: {', '.join(self.labels)}") from None
        except ValueError:
            raise InvalidInputError(f"latency table label {label!r} has no candidate {value!r}; candidates: "
                                    f"{list(self.values[label])}") from None

    def predict(self, sample: Mapping[str, Any]) -> float:
        """The table's latency (ms) of a sample (every label must be there; other keys are ignored)."""
        missing = [label for label in self.labels if label not in sample]
        if missing:
            raise InvalidInputError(f"sample is missing label(s) {', '.join(missing)}")
        extra = sum(self.latency_ms[label][self.index(label, sample[label])] for label in self.labels)
        return float(self.base_ms + extra)

    def expected(self, probabilities: Mapping[str, Sequence[float]]) -> float:
        """Expected latency (ms) under independent categorical distributions (label → probabilities aligned
        with ``values``); labels left out count at their cheapest candidate. No gradient: see
        :mod:`nas_latency.nni.oneshot` for the differentiable version."""
        total = self.base_ms
        for label, probs in probabilities.items():
            p = np.asarray(probs, dtype=np.float64)
            if p.shape != (len(self.values[label]),):
                raise InvalidInputError(f"label {label!r}: {p.shape[0]} probabilities for {len(self.values[label])} "
                                        f"candidates")
            total += float(p @ np.asarray(self.latency_ms[label]))
        return float(total)

    def rows(self) -> list[dict[str, Any]]:
        """One row per (label, candidate): ``label, value, latency_ms`` (for CSV/table output)."""
        return [{"label": label, "value": value, "latency_ms": ms}
                for label in self.labels for value, ms in zip(self.values[label], self.latency_ms[label])]

    # ---- JSON -------------------------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": TABLE_FORMAT_VERSION,
            "base_ms": self.base_ms,
            "choices": [{"label": label, "values": list(self.values[label]), "latency_ms": list(self.latency_ms[label])}
                        for label in self.labels],
            "n_samples": self.n_samples,
            "exhaustive": self.exhaustive,
            "rmse_ms": self.rmse_ms,
            "r2": self.r2,
            "source": self.source,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "LatencyTable":
        if data.get("format_version") != TABLE_FORMAT_VERSION:
            raise InvalidInputError(f"latency table format_version {data.get('format_version')!r} is not "
                                    f"{TABLE_FORMAT_VERSION}")
        try:
            choices = data["choices"]
            labels = tuple(str(c["label"]) for c in choices)
            values = {str(c["label"]): tuple(c["values"]) for c in choices}
            latency = {str(c["label"]): tuple(float(v) for v in c["latency_ms"]) for c in choices}
            table = cls(labels, values, latency, float(data["base_ms"]), int(data["n_samples"]),
                        bool(data["exhaustive"]), float(data["rmse_ms"]), float(data["r2"]),
                        str(data.get("source", "")))
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInputError(f"malformed latency table: {exc!r}") from None
        for label in labels:
            if len(values[label]) != len(latency[label]):
                raise InvalidInputError(f"latency table label {label!r}: {len(values[label])} values but "
                                        f"{len(latency[label])} latencies")
        return table

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path) -> "LatencyTable":
        try:
            return cls.from_dict(json.loads(Path(path).read_text()))
        except (OSError, json.JSONDecodeError) as exc:
            raise InvalidInputError(f"{path}: cannot read a latency table ({exc})") from None


class TableProfiler(Profiler):
    """An NNI profiler answering from a :class:`LatencyTable` (additive estimate; no backend call)."""

    def __init__(self, table: LatencyTable) -> None:
        super().__init__(None)  # type: ignore[arg-type]
        self.table = table

    def profile(self, sample: Mapping[str, Any]) -> float:
        return self.table.predict(sample)


def categorical_choices(model_space: Any) -> dict[str, tuple[Any, ...]]:
    """label → candidate values of every choice of ``model_space`` (``simplify()``); each must be categorical."""
    choices: dict[str, tuple[Any, ...]] = {}
    for label, mutable in model_space.simplify().items():
        if not isinstance(mutable, Categorical):
            raise InvalidInputError(f"choice {label!r} is a {type(mutable).__name__}; a latency table needs "
                                    f"categorical choices (LayerChoice, nni.choice)")
        choices[label] = tuple(mutable.values)
    if not choices:
        raise InvalidInputError("the model space has no choices")
    return choices


def _samples(choices: Mapping[str, tuple[Any, ...]], n_samples: int, seed: int) -> tuple[list[dict[str, Any]], bool]:
    labels = list(choices)
    size = math.prod(len(choices[label]) for label in labels)
    if size <= n_samples:
        return [dict(zip(labels, combo)) for combo in itertools.product(*(choices[label] for label in labels))], True
    rng = np.random.default_rng(seed)
    picks = np.column_stack([rng.integers(0, len(choices[label]), size=n_samples) for label in labels])
    return [{label: choices[label][int(i)] for label, i in zip(labels, row)} for row in picks], False


def build_latency_table(model_space: Any, profiler: Profiler, *, n_samples: int = DEFAULT_TABLE_SAMPLES,
                        seed: int = 0) -> LatencyTable:
    """Fit the additive per-choice table of ``model_space`` to ``profiler``'s latencies of ``n_samples`` samples
    (every sample when the space has at most that many). Profilers with ``profile_many`` are asked once."""
    choices = categorical_choices(model_space)
    labels = tuple(choices)
    n_params = 1 + sum(len(v) - 1 for v in choices.values())
    if n_samples < n_params:
        raise InvalidInputError(f"n_samples={n_samples} is fewer than the {n_params} table entries to fit")
    samples, exhaustive = _samples(choices, n_samples, seed)
    if hasattr(profiler, "profile_many"):
        latency = np.asarray(profiler.profile_many(samples), dtype=np.float64)
    else:
        latency = np.array([profiler.profile(s) for s in samples], dtype=np.float64)
    # design: intercept + one-hot of every label without its first candidate (reference coding)
    columns: list[tuple[str, int]] = [(label, j) for label in labels for j in range(1, len(choices[label]))]
    col_index = {c: k + 1 for k, c in enumerate(columns)}
    X = np.zeros((len(samples), 1 + len(columns)))
    X[:, 0] = 1.0
    for i, sample in enumerate(samples):
        for label in labels:
            j = choices[label].index(sample[label])
            if j:
                X[i, col_index[(label, j)]] = 1.0
    coef, *_ = np.linalg.lstsq(X, latency, rcond=None)
    residual = latency - X @ coef
    rmse = float(np.sqrt(np.mean(residual ** 2)))
    total = float(np.sum((latency - latency.mean()) ** 2))
    r2 = 1.0 - float(np.sum(residual ** 2)) / total if total > 0 else 1.0
    base = float(coef[0])
    table: dict[str, tuple[float, ...]] = {}
    for label in labels:
        effects = np.array([0.0] + [coef[col_index[(label, j)]] for j in range(1, len(choices[label]))])
        cheapest = float(effects.min())
        base += cheapest
        table[label] = tuple(float(v) for v in effects - cheapest)
    log.info("latency table: %d labels from %d%s samples, rmse %.3f ms, R² %.3f", len(labels), len(samples),
             " (all)" if exhaustive else "", rmse, r2)
    return LatencyTable(labels, choices, table, base, len(samples), exhaustive, rmse, r2, repr(profiler))
