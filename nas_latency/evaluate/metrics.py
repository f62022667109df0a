"""Accuracy and ranking metrics of a latency predictor, numpy only and vectorized.

Every metric takes ``y_true`` (measured latencies) and ``y_pred`` (predicted latencies) as 1-D array-likes of
the same length (at least two points, all finite) and raises :class:`~nas_latency.errors.InvalidInputError`
naming the metric and the argument otherwise.

Degenerate inputs: a rank correlation (or R²) of a constant vector is undefined; those metrics then return
``float('nan')`` (as :func:`scipy.stats.spearmanr` and :func:`scipy.stats.kendalltau` do) instead of raising, so
that a summary table can still be printed.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
import numpy.typing as npt

from nas_latency.errors import InvalidInputError

ArrayLike = npt.ArrayLike
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]

#: Keys of :func:`summarize`, in order. ``mape_pct`` is in percent, ``within_10pct`` is a fraction (0..1).
SUMMARY_KEYS: Final[tuple[str, ...]] = ("spearman", "kendall", "mape_pct", "within_10pct", "r2")


# ---- validation ----------------------------------------------------------------------------------------------
def _vector(values: ArrayLike, *, metric: str, arg: str) -> FloatArray:
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{metric}: {arg} must be a 1-D array of numbers ({exc})") from None
    if arr.ndim != 1:
        raise InvalidInputError(f"{metric}: {arg} must be 1-D, got an array of shape {arr.shape}")
    if arr.size < 2:
        raise InvalidInputError(f"{metric}: needs at least 2 points, {arg} has {arr.size}")
    bad = ~np.isfinite(arr)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise InvalidInputError(
            f"{metric}: {arg} has {int(bad.sum())} non-finite values (NaN or inf), the first at index {first}"
        )
    return arr


def _pair(
    a: ArrayLike, b: ArrayLike, *, metric: str, names: tuple[str, str] = ("y_true", "y_pred")
) -> tuple[FloatArray, FloatArray]:
    x = _vector(a, metric=metric, arg=names[0])
    y = _vector(b, metric=metric, arg=names[1])
    if x.size != y.size:
        raise InvalidInputError(f"{metric}: {names[0]} has {x.size} points but {names[1]} has {y.size}")
    return x, y


def _positive(values: FloatArray, *, metric: str, arg: str = "y_true") -> None:
    bad = values <= 0
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise InvalidInputError(
            f"{metric}: {arg} must be positive (relative errors divide by it); {int(bad.sum())} values are <= 0, "
            f"the first {values[first]!r} at index {first}"
        )


# ---- ranks ------------------------------------------------------------------------------------------------------
def _dense_ranks(values: FloatArray) -> IntArray:
    """Dense ranks ``0..m-1`` (equal values share a rank) and nothing else."""
    _, inverse = np.unique(values, return_inverse=True)
    return inverse.astype(np.intp, copy=False).reshape(-1)


def rankdata_average(values: ArrayLike) -> FloatArray:
    """Ranks ``1..n`` with ties given the average of the ranks they span (``scipy.stats.rankdata``'s default)."""
    x = np.asarray(values, dtype=np.float64)
    n = x.size
    order = np.argsort(x, kind="stable")
    xs = x[order]
    new_group = np.r_[True, xs[1:] != xs[:-1]]
    group = np.cumsum(new_group) - 1  # group id of each sorted position
    bounds = np.r_[np.flatnonzero(new_group), n]  # group g spans sorted positions bounds[g] .. bounds[g+1]-1
    avg = 0.5 * (bounds[group] + bounds[group + 1] + 1)  # mean of the 1-based ranks bounds[g]+1 .. bounds[g+1]
    ranks = np.empty(n, dtype=np.float64)
    ranks[order] = avg
    return ranks


def _pearson(x: FloatArray, y: FloatArray) -> float:
    xc = x - x.mean()
    yc = y - y.mean()
    denom = math.sqrt(float(xc @ xc) * float(yc @ yc))
    if denom == 0.0:
        return math.nan
    return float(np.clip((xc @ yc) / denom, -1.0, 1.0))


def spearman(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Spearman's rank correlation: Pearson's correlation of the average ranks (ties share their mean rank).

    Returns NaN when either input is constant.
    """
    x, y = _pair(y_true, y_pred, metric="spearman")
    return _pearson(rankdata_average(x), rankdata_average(y))


def _count_inversions(seq: IntArray) -> int:
    """Number of pairs ``i < j`` with ``seq[i] > seq[j]`` (strictly), for non-negative integers.

    Bottom-up merge counting, vectorized per level: at the level of width ``w`` every pair that lies in the same
    block of ``2w`` but in different halves is counted, by binary search of each right-half element among the
    sorted left halves. ``ceil(log2 n)`` levels of ``O(n log n)`` each.
    """
    n = seq.size
    if n < 2:
        return 0
    span = int(seq.max()) + 1
    seq64 = seq.astype(np.int64, copy=False)
    positions = np.arange(n, dtype=np.int64)
    total = 0
    width = 1
    while width < n:
        half = positions // width  # halves 2b (left) and 2b+1 (right) form block b
        right = (half & 1).astype(bool)
        keys = half * span + seq64  # orders by half first, then value: sorted left halves stay apart
        left_keys = np.sort(keys[~right])
        right_left_half = half[right] - 1
        end_of_left = np.searchsorted(left_keys, (right_left_half + 1) * span, side="left")
        not_greater = np.searchsorted(left_keys, keys[right] - span, side="right")  # left keys <= value
        total += int((end_of_left - not_greater).sum())
        width *= 2
    return total


def _tie_pairs(dense: IntArray) -> int:
    counts = np.bincount(dense).astype(np.int64)
    return int((counts * (counts - 1) // 2).sum())


def kendall_tau_b(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Kendall's tau-b, corrected for ties in either input (``scipy.stats.kendalltau(variant='b')``).

    ``tau_b = (C - D) / sqrt((P - T_x) (P - T_y))`` with ``P = n(n-1)/2`` pairs, ``T_x``/``T_y`` the pairs tied in
    one input. ``O(n log² n)``, vectorized (Knight's algorithm with the discordant pairs counted by a merge
    count). Returns NaN when either input is constant.
    """
    x, y = _pair(y_true, y_pred, metric="kendall_tau_b")
    n = x.size
    xr = _dense_ranks(x)
    yr = _dense_ranks(y)
    order = np.lexsort((yr, xr))  # by x, then y: pairs tied in x are never counted as discordant
    xs, ys = xr[order], yr[order]
    discordant = _count_inversions(ys)
    joint_new = np.r_[True, (xs[1:] != xs[:-1]) | (ys[1:] != ys[:-1]), True]
    joint_counts = np.diff(np.flatnonzero(joint_new)).astype(np.int64)
    tied_both = int((joint_counts * (joint_counts - 1) // 2).sum())
    tied_x, tied_y = _tie_pairs(xr), _tie_pairs(yr)
    pairs = n * (n - 1) // 2
    if tied_x == pairs or tied_y == pairs:
        return math.nan
    # concordant - discordant = (pairs untied in both) - 2 * discordant
    con_minus_dis = pairs - tied_x - tied_y + tied_both - 2 * discordant
    tau = con_minus_dis / math.sqrt(float(pairs - tied_x)) / math.sqrt(float(pairs - tied_y))
    return float(min(1.0, max(-1.0, tau)))


# ---- errors -----------------------------------------------------------------------------------------------------
def mape(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Mean absolute percentage error, in percent: ``100 * mean(|y_pred - y_true| / y_true)``.

    ``y_true`` must be positive.
    """
    x, y = _pair(y_true, y_pred, metric="mape")
    _positive(x, metric="mape")
    return float(100.0 * np.mean(np.abs(y - x) / x))


def within_pct(y_true: ArrayLike, y_pred: ArrayLike, pct: float = 10.0) -> float:
    """Fraction (0..1) of predictions within ``±pct`` percent of the truth: ``|y_pred - y_true| <= pct/100 * y_true``.

    ``y_true`` must be positive and ``pct`` a finite number ``>= 0``. The bound is inclusive, with a 1e-12
    tolerance on the relative error so that floating-point noise does not push an exact ``pct`` off it.
    """
    x, y = _pair(y_true, y_pred, metric="within_pct")
    if isinstance(pct, bool) or not isinstance(pct, (int, float, np.integer, np.floating)):
        raise InvalidInputError(f"within_pct: pct must be a number, got {pct!r}")
    if not math.isfinite(pct) or pct < 0:
        raise InvalidInputError(f"within_pct: pct must be a finite number >= 0, got {pct!r}")
    _positive(x, metric="within_pct")
    rel = np.abs(y - x) / x
    return float(np.mean(rel <= pct / 100.0 + 1e-12))


def r2(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Coefficient of determination ``1 - SS_res / SS_tot`` (can be negative). NaN when ``y_true`` is constant."""
    x, y = _pair(y_true, y_pred, metric="r2")
    ss_tot = float(np.sum((x - x.mean()) ** 2))
    if ss_tot == 0.0:
        return math.nan
    return 1.0 - float(np.sum((x - y) ** 2)) / ss_tot


# ---- top-k and Pareto -------------------------------------------------------------------------------------------
def _inclusion_probability(values: FloatArray, k: int) -> FloatArray:
    """Probability that each item is among the ``k`` smallest when ties are broken uniformly at random."""
    kth = np.partition(values, k - 1)[k - 1]
    below = values < kth
    at = values == kth
    room = k - int(below.sum())  # places left for the items tied at the boundary value
    return below + at * (room / int(at.sum()))


def top_k_overlap(y_true: ArrayLike, y_pred: ArrayLike, k: int) -> float:
    """Fraction (0..1) of the ``k`` truly fastest items that are among the ``k`` predicted fastest.

    Ties: where several items tie at the boundary (the k-th smallest value), which of them are "in the top k" is
    decided by breaking ties uniformly at random, independently in ``y_true`` and ``y_pred``, and the *expected*
    overlap is returned, in closed form: ``sum_i p_i q_i / k`` where ``p_i`` (``q_i``) is the probability that item
    ``i`` is in the true (predicted) top k — 1 strictly below the boundary, ``slots / tied`` at it, 0 above.
    So the result does not depend on the order of the items, and a constant prediction scores ``k / n``
    (chance), never 1.
    """
    x, y = _pair(y_true, y_pred, metric="top_k_overlap")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise InvalidInputError(f"top_k_overlap: k must be an integer, got {k!r}")
    if not 1 <= k <= x.size:
        raise InvalidInputError(f"top_k_overlap: k must be between 1 and the number of points ({x.size}), got {k}")
    k = int(k)
    p = _inclusion_probability(x, k)
    q = _inclusion_probability(y, k)
    return float(min(1.0, (p @ q) / k))


def _pareto_front(latency: FloatArray, accuracy: FloatArray) -> IntArray:
    order = np.lexsort((-accuracy, latency))  # latency ascending, then accuracy descending
    lat, acc = latency[order], accuracy[order]
    new_group = np.r_[True, lat[1:] != lat[:-1]]
    group = np.cumsum(new_group) - 1
    group_best = acc[new_group]  # the most accurate point of each latency
    best_before = np.r_[-np.inf, np.maximum.accumulate(group_best)[:-1]]  # best accuracy at strictly lower latency
    keep = (acc == group_best[group]) & (acc > best_before[group])
    return order[keep].astype(np.intp)


def pareto_front(latency: ArrayLike, accuracy: ArrayLike) -> IntArray:
    """Indices of the latency/accuracy Pareto front (lower latency and higher accuracy are better).

    A point is on the front when no other point is at least as fast and at least as accurate and strictly better
    in one of the two. Identical points do not dominate each other, so duplicates on the front are all
    returned. Indices come ordered by latency ascending (ties: by index).
    """
    lat, acc = _pair(latency, accuracy, metric="pareto_front", names=("latency", "accuracy"))
    return _pareto_front(lat, acc)


def pareto_recall(true_latency: ArrayLike, pred_latency: ArrayLike, accuracy: ArrayLike) -> float:
    """Fraction (0..1) of the true latency/accuracy Pareto front that is also on the front built from the
    predicted latencies (same accuracies): ``|F_true ∩ F_pred| / |F_true|``."""
    t, p = _pair(true_latency, pred_latency, metric="pareto_recall", names=("true_latency", "pred_latency"))
    acc = _vector(accuracy, metric="pareto_recall", arg="accuracy")
    if acc.size != t.size:
        raise InvalidInputError(f"pareto_recall: true_latency has {t.size} points but accuracy has {acc.size}")
    true_front = _pareto_front(t, acc)
    pred_front = _pareto_front(p, acc)
    return float(np.isin(true_front, pred_front).sum() / true_front.size)


# ---- summary ----------------------------------------------------------------------------------------------------
def summarize(y_true: ArrayLike, y_pred: ArrayLike) -> dict[str, float]:
    """The headline metrics, keyed by :data:`SUMMARY_KEYS`: ``spearman``, ``kendall`` (tau-b), ``mape_pct``
    (percent), ``within_10pct`` (fraction of predictions within ±10 %) and ``r2``."""
    x, y = _pair(y_true, y_pred, metric="summarize")
    _positive(x, metric="summarize")
    return {
        "spearman": spearman(x, y),
        "kendall": kendall_tau_b(x, y),
        "mape_pct": mape(x, y),
        "within_10pct": within_pct(x, y, 10.0),
        "r2": r2(x, y),
    }
