"""Signature-set selection: which K architectures a new device should measure to be onboarded.

Every method sees only the **training** devices' latencies (``latency_ms_table``: one row per arch of ``archs``,
one column per training device, NaN = unmeasured) and returns K distinct arch ids from ``archs``,
deterministically for a seed. Shared rules:

* Candidates are the archs measured on **every** training device (a signature arch must have a value in every
  training device's signature vector) that are not degenerate.
* With a ``degenerate_mask`` holding any True (e.g. NAS-Bench-201 cells with no input→output path, which some
  devices drop), exactly one degenerate arch is included: the first in ``archs`` order measured on every training
  device (else the first). The research found this the one robust signature gain: it tells whether the device
  drops such networks. The other K − 1 come from the method.
* Correlation-type methods look at each candidate's **profile**: its log-latency on each training device minus
  that device's mean log-latency over the candidates. Without the centring every pair of archs correlates at
  ~0.87 (Spearman, NB201) because all archs share the devices' speed ordering.
* Methods that would cost O(n²) work on a seeded pool of at most :data:`POOL_SIZE` candidates.

Methods (:data:`SELECTION_METHODS`):

``random``
    a seeded uniform draw.
``mutual_information``
    greedy mRMR (max relevance, min redundancy). MI between two archs is estimated over the training devices
    (the samples) with a Gaussian-copula estimator: each profile is rank-transformed across devices to normal
    scores ``Φ⁻¹((rank − ½)/n)``, then ``MI = −½ log(1 − ρ²)`` with ``ρ`` their Pearson correlation (|ρ| clipped at
    0.999). Relevance of a candidate = its mean MI with the pool (how much it tells about the other archs);
    redundancy = its mean MI with the archs already chosen. The first pick maximizes relevance; each next pick
    maximizes relevance − redundancy.
``spearman_greedy``
    Ganesan et al.: start from the most representative arch (highest mean |ρ_s| with the pool), then repeatedly
    add the candidate whose profile has the lowest mean |Spearman ρ| with the archs chosen so far (ties: lowest
    max |ρ|, then pool order).
``kmedoids``
    standardized log-latency vectors (per device: centre and scale over the candidates), k-medoids with
    Euclidean distance: deterministic PAM BUILD initialization, then alternating (Voronoi) medoid updates until
    stable (≤ 50 rounds). Returns the medoids.
``informative``
    ours: greedy forward selection from a seeded pool of :data:`INFORMATIVE_POOL` candidates. Each step adds the
    candidate minimizing the inner leave-one-device-out log-MSE of the closed-form ridge-prior adapter
    (:mod:`nas_latency.signature.ridge_prior`): for each training device, the prior is learned from the others,
    adapted on the chosen archs' latencies on that device, and scored on a seeded evaluation sample of
    :data:`INFORMATIVE_EVAL` archs. Needs ``features`` and at least 3 training devices.
"""

from __future__ import annotations

import logging
from typing import Callable, Sequence

import numpy as np
from scipy.special import ndtri

from nas_latency.errors import InvalidInputError, NotFoundError
from nas_latency.ir import FeatureMatrix
from nas_latency.models.cost_nnls import COST_PREFIXES
from nas_latency.models.without_costs import kept_columns
from nas_latency.signature.ridge_prior import FeatureTransform, log_latency, prior_from_weights, ridge_weights

logger = logging.getLogger(__name__)

#: largest candidate pool for the O(pool²) methods (mutual_information, spearman_greedy, kmedoids)
POOL_SIZE = 2000
#: candidate pool of the informative method
INFORMATIVE_POOL = 150
#: evaluation archs of the informative method's inner leave-one-device-out error
INFORMATIVE_EVAL = 2000
#: ridge-prior hyper-parameters used by the informative method (research values)
INFORMATIVE_PRIOR = {"ridge": 1e-2, "scale": 4.0, "tau2": 1e-4, "noise": 1e-2}


# ---- shared pieces --------------------------------------------------------------------------------------------
def _profiles(L: np.ndarray, centre: np.ndarray | None = None) -> np.ndarray:
    """Per-device-centred log-latency profiles (rows = archs); ``centre`` defaults to the column means of ``L``."""
    return L - (L.mean(axis=0) if centre is None else np.asarray(centre, dtype=np.float64))[None, :]


def _rank_rows(P: np.ndarray) -> np.ndarray:
    """Average ranks (1..n) of each row, ties share their mean rank."""
    order = np.argsort(P, axis=1, kind="stable")
    ranks = np.empty_like(P)
    n = P.shape[1]
    rows = np.arange(P.shape[0])[:, None]
    ranks[rows, order] = np.arange(1, n + 1, dtype=np.float64)
    # average ties: rank of equal values = mean of their positions
    sorted_vals = np.take_along_axis(P, order, axis=1)
    for i in np.flatnonzero((np.diff(sorted_vals, axis=1) == 0).any(axis=1)):
        _, inverse, counts = np.unique(P[i], return_inverse=True, return_counts=True)
        ends = np.cumsum(counts)
        ranks[i] = ((ends - counts + 1 + ends) / 2.0)[inverse]
    return ranks


def _row_standardize(M: np.ndarray) -> np.ndarray:
    Mc = M - M.mean(axis=1, keepdims=True)
    norm = np.sqrt((Mc * Mc).sum(axis=1, keepdims=True))
    return np.divide(Mc, norm, out=np.zeros_like(Mc), where=norm > 0)


def spearman_matrix(L: np.ndarray, centre: np.ndarray | None = None) -> np.ndarray:
    """Spearman correlations between the rows of log-latencies ``L`` (archs), across its columns (devices), on
    profiles centred by ``centre`` (per-device mean log-latency; default: the column means of ``L``).

    Rows with a constant profile correlate 0 with everything."""
    R = _row_standardize(_rank_rows(_profiles(L, centre)))
    return np.clip(R @ R.T, -1.0, 1.0)


def gaussian_copula_mi(L: np.ndarray, centre: np.ndarray | None = None) -> np.ndarray:
    """Pairwise mutual information (nats) between the rows of ``L`` across its columns (Gaussian-copula estimate),
    on profiles centred by ``centre`` as in :func:`spearman_matrix`."""
    n = L.shape[1]
    normal_scores = ndtri((_rank_rows(_profiles(L, centre)) - 0.5) / n)
    Z = _row_standardize(normal_scores)
    rho = np.clip(Z @ Z.T, -0.999, 0.999)
    return -0.5 * np.log1p(-rho * rho)


def _pool(candidates: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    if len(candidates) <= size:
        return candidates
    return np.sort(rng.choice(candidates, size=size, replace=False))


# ---- methods (indices in, indices out) ------------------------------------------------------------------------
def _random(ctx: "_Context", k: int) -> list[int]:
    return [int(i) for i in ctx.rng.choice(ctx.candidates, size=k, replace=False)]


def _spearman_greedy(ctx: "_Context", k: int) -> list[int]:
    pool = _pool(ctx.candidates, POOL_SIZE, ctx.rng)
    A = np.abs(spearman_matrix(ctx.L[pool], ctx.centre))
    chosen = [int(np.argmax(A.mean(axis=1)))]
    while len(chosen) < k:
        sub = A[:, chosen]
        mean_rho, max_rho = sub.mean(axis=1), sub.max(axis=1)
        mean_rho[chosen] = np.inf
        best = np.flatnonzero(np.isclose(mean_rho, mean_rho.min(), rtol=0, atol=1e-12))
        chosen.append(int(best[np.argmin(max_rho[best])]))
    return [int(pool[i]) for i in chosen]


def _mutual_information(ctx: "_Context", k: int) -> list[int]:
    pool = _pool(ctx.candidates, POOL_SIZE, ctx.rng)
    MI = gaussian_copula_mi(ctx.L[pool], ctx.centre)
    relevance = (MI.sum(axis=1) - np.diag(MI)) / max(len(pool) - 1, 1)
    chosen = [int(np.argmax(relevance))]
    while len(chosen) < k:
        score = relevance - MI[:, chosen].mean(axis=1)
        score[chosen] = -np.inf
        chosen.append(int(np.argmax(score)))
    return [int(pool[i]) for i in chosen]


def _kmedoids(ctx: "_Context", k: int) -> list[int]:
    pool = _pool(ctx.candidates, POOL_SIZE, ctx.rng)
    V = ctx.L[pool]
    std = V.std(axis=0)
    Z = (V - V.mean(axis=0)) / np.where(std > 0, std, 1.0)
    sq = (Z * Z).sum(axis=1)
    D = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2.0 * Z @ Z.T, 0.0))
    np.fill_diagonal(D, 0.0)
    # PAM BUILD: first the point of least total distance, then the point that most reduces the total cost
    medoids = [int(np.argmin(D.sum(axis=1)))]
    nearest = D[medoids[0]].copy()
    while len(medoids) < k:
        gain = np.maximum(nearest[None, :] - D, 0.0).sum(axis=1)
        gain[medoids] = -np.inf
        medoids.append(int(np.argmax(gain)))
        nearest = np.minimum(nearest, D[medoids[-1]])
    # alternating updates: assign to nearest medoid, move each medoid to its cluster's 1-median
    for _ in range(50):
        labels = np.argmin(D[:, medoids], axis=1)
        updated = []
        for c, m in enumerate(medoids):
            members = np.flatnonzero(labels == c)
            if len(members) == 0:
                updated.append(m)
                continue
            cost = D[np.ix_(members, members)].sum(axis=1)
            best = int(members[np.argmin(cost)])
            updated.append(best if cost.min() < D[m, members].sum() - 1e-12 else m)
        if updated == medoids or len(set(updated)) < len(updated):
            break
        medoids = updated
    return [int(pool[i]) for i in medoids]


def _informative(ctx: "_Context", k: int) -> list[int]:
    if ctx.X is None:
        raise InvalidInputError("signature method 'informative' needs features (a FeatureMatrix of the archs)")
    n_dev = ctx.L.shape[1]
    pool = _pool(ctx.candidates, INFORMATIVE_POOL, ctx.rng)
    if len(pool) < k:
        pool = ctx.candidates
    evaluation = _pool(ctx.candidates, INFORMATIVE_EVAL, ctx.rng)
    prior = INFORMATIVE_PRIOR
    transform = FeatureTransform.fit(ctx.X[ctx.candidates])
    Phi_train = transform.transform(ctx.X[ctx.candidates])
    W = ridge_weights(Phi_train, ctx.L[ctx.candidates], ridge=prior["ridge"])
    P, E = transform.transform(ctx.X[pool]), transform.transform(ctx.X[evaluation])
    # per held-out training device j: prior from the others, then everything the greedy loop needs
    per_device = []
    for j in range(n_dev):
        others = [d for d in range(n_dev) if d != j]
        mu, Sigma = prior_from_weights(W[:, others], scale=prior["scale"], tau2=prior["tau2"])
        SPt = Sigma @ P.T
        per_device.append(
            (P @ SPt, E @ SPt, ctx.L[pool, j] - P @ mu, ctx.L[evaluation, j] - E @ mu)
        )
    chosen: list[int] = []
    noise = prior["noise"]
    while len(chosen) < k:
        remaining = np.array([i for i in range(len(pool)) if i not in chosen])
        sets = np.column_stack([np.tile(chosen, (len(remaining), 1)).astype(int), remaining])  # (m, s)
        error = np.zeros(len(remaining))
        eye = noise * np.eye(sets.shape[1])
        for PSP, ESP, r_pool, r_eval in per_device:
            G = PSP[sets[:, :, None], sets[:, None, :]] + eye  # (m, s, s)
            alpha = np.linalg.solve(G, r_pool[sets][:, :, None])[:, :, 0]  # (m, s)
            # fitted[m] = ESP[:, chosen] @ alpha[m, :-1] + ESP[:, remaining[m]] * alpha[m, -1], without gathering
            # the (evaluation x candidates x set) block
            fitted = (ESP[:, chosen] @ alpha[:, :-1].T).T + ESP[:, remaining].T * alpha[:, -1:]
            error += np.mean((r_eval[None, :] - fitted) ** 2, axis=1)
        chosen.append(int(remaining[np.argmin(error)]))
        logger.debug("informative: step %d inner LODO log-MSE %.5f", len(chosen), error.min() / n_dev)
    return [int(pool[i]) for i in chosen]


_METHODS: dict[str, Callable[["_Context", int], list[int]]] = {
    "random": _random,
    "mutual_information": _mutual_information,
    "spearman_greedy": _spearman_greedy,
    "kmedoids": _kmedoids,
    "informative": _informative,
}
#: the selection methods, in documentation order
SELECTION_METHODS: tuple[str, ...] = tuple(_METHODS)
_MIN_DEVICES = {"random": 1, "kmedoids": 1, "mutual_information": 3, "spearman_greedy": 3, "informative": 3}


class _Context:
    def __init__(self, L: np.ndarray, candidates: np.ndarray, X: np.ndarray | None, seed: int) -> None:
        self.L = L
        self.candidates = candidates
        self.centre = L[candidates].mean(axis=0)  # per-device mean log-latency over the candidates
        self.X = X
        self.rng = np.random.default_rng(seed)


# ---- the public function --------------------------------------------------------------------------------------
def _check_table(latency_ms_table: np.ndarray, n_archs: int) -> np.ndarray:
    try:
        Y = np.asarray(latency_ms_table, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"select_signature: latency table is not numeric ({exc})") from None
    if Y.ndim != 2 or Y.shape[0] != n_archs or Y.shape[1] < 1:
        raise InvalidInputError(
            f"select_signature: expected a latency table of shape ({n_archs}, n_training_devices), got {Y.shape}"
        )
    if np.isinf(Y).any():
        raise InvalidInputError("select_signature: latency table holds infinite values (use NaN for unmeasured)")
    if (Y[np.isfinite(Y)] <= 0).any():
        raise InvalidInputError("select_signature: latencies must be > 0 ms (NaN marks unmeasured)")
    return Y


def select_signature(
    method: str,
    latency_ms_table: np.ndarray,
    archs: Sequence[str],
    k: int,
    *,
    seed: int,
    features: FeatureMatrix | None = None,
    degenerate_mask: np.ndarray | Sequence[bool] | None = None,
) -> list[str]:
    """K distinct arch ids from ``archs`` for a new device to measure, chosen from training devices only.

    ``latency_ms_table`` has one row per arch of ``archs`` and one column per training device (NaN = unmeasured).
    ``features`` (rows named by arch ids; any order, must cover ``archs``) is needed by ``informative`` only; its
    ``cost.*`` columns are not used.
    See the module docstring for the methods and the shared rules. Raises ``NotFoundError`` for an unknown method,
    ``InvalidInputError`` for bad inputs, including ``k`` larger than the number of archs (or of usable
    candidates).
    """
    if method not in _METHODS:
        raise NotFoundError(
            f"unknown signature selection method {method!r}; known methods: {', '.join(SELECTION_METHODS)}"
        )
    archs = [str(a) for a in archs]
    if len(set(archs)) != len(archs):
        raise InvalidInputError("select_signature: archs must be distinct")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise InvalidInputError(f"select_signature: k must be a positive integer, got {k!r}")
    if k > len(archs):
        raise InvalidInputError(f"select_signature: cannot choose k={k} signature archs from {len(archs)} archs")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise InvalidInputError(f"select_signature: seed must be an integer, got {seed!r}")
    Y = _check_table(latency_ms_table, len(archs))
    if Y.shape[1] < _MIN_DEVICES[method]:
        raise InvalidInputError(
            f"select_signature: method {method!r} needs at least {_MIN_DEVICES[method]} training devices, "
            f"got {Y.shape[1]}"
        )
    if degenerate_mask is None:
        degenerate = np.zeros(len(archs), dtype=bool)
    else:
        degenerate = np.asarray(degenerate_mask, dtype=bool)
        if degenerate.shape != (len(archs),):
            raise InvalidInputError(
                f"select_signature: degenerate_mask must have one entry per arch ({len(archs)}), "
                f"got shape {degenerate.shape}"
            )
    X = None
    if features is not None:
        index = {row: i for i, row in enumerate(features.rows)}
        missing = [a for a in archs if a not in index]
        if missing:
            raise InvalidInputError(
                f"select_signature: features lack {len(missing)} of the archs (first {missing[0]!r})"
            )
        # the IR cost columns are cost_nnls's (it prices them per device; no prior to score): the adapter that
        # scores candidate sets here is the transfer models', which never see them (``without_costs``)
        columns = kept_columns(tuple(features.names), COST_PREFIXES)
        X = np.asarray(features.values, dtype=np.float64)[[index[a] for a in archs]][:, columns]

    complete = np.isfinite(Y).all(axis=1)
    candidates = np.flatnonzero(complete & ~degenerate)
    forced: list[int] = []
    if degenerate.any():
        usable = np.flatnonzero(degenerate & complete)
        forced = [int(usable[0] if len(usable) else np.flatnonzero(degenerate)[0])]
    k_rest = int(k) - len(forced)
    if k_rest > len(candidates):
        raise InvalidInputError(
            f"select_signature: need {k_rest} non-degenerate archs measured on every training device, "
            f"only {len(candidates)} are"
        )
    chosen = forced
    if k_rest > 0:
        ctx = _Context(log_latency(Y), candidates, X, int(seed))
        picked = _METHODS[method](ctx, k_rest)
        assert len(set(picked)) == k_rest and not set(picked) & set(forced), "selection returned duplicates"
        chosen = forced + picked
    return [archs[i] for i in chosen]
