"""How a layer's time inside a network depends on the network's memory footprint.

Two curves of this kind feed the stacked network model: ``φ`` (the share of the cold-weight penalty paid, in
[0, 1]) and ``κ`` (the *context* cost in ms per MB of activations a layer reads and writes: with a large footprint
every layer writes its output to memory that is no longer in cache; fitted on chains of batch norm + ReLU of
growing size, see :func:`~nas_latency.bench.memory_items.context_items`).

A micro-kernel timed in a loop finds its weights in cache (*hot*); timed while cycling through copies of itself
that overflow the caches it reads them from memory (*cold*). Inside a network a layer sits in between: its
weights come back after the whole network's footprint ``F`` (weights and activations, bytes) has passed through the
caches. :class:`FootprintModel` learns ``φ(F) ∈ [0, 1]`` from multi-layer *footprint blocks* (chains of identical
layers of growing total size, :func:`~nas_latency.bench.memory_items.footprint_items`):

``φ_block = (t_block − Σ hot) / (Σ cold − Σ hot)``, clipped to [0, 1]; ``φ`` is then the monotone (isotonic)
fit of those points against ``log F``, interpolated linearly in ``log F`` and constant beyond the measured range.

Without data, the default curve (``default_curve="ramp"``) rises log-linearly from 0 at ``F = cache_bytes / 2`` to
``upper`` at ``2 · cache_bytes``; ``"flat"`` is 0 everywhere. The stacked network model predicts a layer as
``hot + κ(F) · activation MB + φ(F) · max(cold − hot, 0)``.
"""

from __future__ import annotations

import hashlib
from typing import Any, Mapping, Sequence

import numpy as np

from nas_latency.errors import InvalidInputError
from nas_latency.models.base import CostModel

DEFAULT_CACHE_BYTES = 32 * 2**20


def _isotonic_increasing(y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Pool-adjacent-violators: the non-decreasing sequence closest to ``y`` in weighted least squares."""
    blocks: list[list[float]] = []  # [mean, weight, count]
    for value, weight in zip(y, w):
        blocks.append([float(value), float(weight), 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            m2, w2, c2 = blocks.pop()
            m1, w1, c1 = blocks.pop()
            blocks.append([(m1 * w1 + m2 * w2) / (w1 + w2), w1 + w2, c1 + c2])
    return np.concatenate([np.full(int(c), m) for m, _, c in blocks]) if blocks else np.zeros(0)


class FootprintModel(CostModel):
    """``φ(footprint)``: the share of the cold-weight penalty paid inside a network of that footprint."""

    kind = "layer_footprint"

    def __init__(self, *, cache_bytes: int = DEFAULT_CACHE_BYTES, upper: float = 1.0,
                 default_curve: str = "ramp") -> None:
        self.cache_bytes = cache_bytes
        self.upper = upper
        self.default_curve = default_curve

    def fit(self, footprint_bytes: Sequence[float], phi: Sequence[float],
            weights: Sequence[float] | None = None) -> "FootprintModel":
        """Fit on blocks: their footprints and measured ``φ`` (any real numbers; clipped to [0, upper]). ``weights``:
        how much each block's ``φ`` is worth (e.g. its cold penalty in ms, since small penalties are noisy)."""
        cache = self.cache_bytes
        if isinstance(cache, bool) or not isinstance(cache, (int, float)) or cache <= 0:
            raise InvalidInputError(f"cache_bytes must be a positive number, got {self.cache_bytes!r}")
        if isinstance(self.upper, bool) or not isinstance(self.upper, (int, float)) or not self.upper > 0:
            raise InvalidInputError(f"upper must be a positive number, got {self.upper!r}")
        if self.default_curve not in ("ramp", "flat"):
            raise InvalidInputError(f"default_curve must be 'ramp' or 'flat', got {self.default_curve!r}")
        upper = float(self.upper)
        f = np.asarray(footprint_bytes, dtype=np.float64)
        p = np.asarray(phi, dtype=np.float64)
        w = np.ones_like(f) if weights is None else np.asarray(weights, dtype=np.float64)
        if f.shape != p.shape or f.shape != w.shape or f.ndim != 1:
            raise InvalidInputError("footprint model: footprints, phi and weights must be 1-D and of one length")
        ok = np.isfinite(f) & np.isfinite(p) & (f > 0) & np.isfinite(w) & (w > 0)
        if ok.sum() == 0:
            cache = float(self.cache_bytes)
            self.log_footprint_ = np.log(np.array([cache / 2, 2 * cache]))
            self.phi_ = np.array([0.0, upper if self.default_curve == "ramp" else 0.0])
            self.n_blocks_ = 0
        else:
            order = np.argsort(f[ok])
            log_f = np.log(f[ok][order])
            fitted = _isotonic_increasing(np.clip(p[ok][order], 0.0, upper), w[ok][order])
            # one knot per distinct footprint (mean of ties)
            knots, values = [], []
            for value in np.unique(log_f):
                knots.append(float(value))
                values.append(float(fitted[log_f == value].mean()))
            self.log_footprint_ = np.asarray(knots)
            self.phi_ = np.maximum.accumulate(np.asarray(values))
            self.n_blocks_ = int(ok.sum())
        self.feature_schema_hash_ = hashlib.sha256(b"footprint").hexdigest()[:16]
        self.feature_names_ = ()
        return self

    def phi(self, footprint_bytes: float | np.ndarray) -> np.ndarray:
        self._check_fitted()
        x = np.log(np.maximum(np.asarray(footprint_bytes, dtype=np.float64), 1.0))
        return np.interp(x, self.log_footprint_, self.phi_)

    def curve(self) -> list[dict[str, float]]:
        self._check_fitted()
        return [{"footprint_mb": float(np.exp(k) / 2**20), "phi": float(v)}
                for k, v in zip(self.log_footprint_, self.phi_)]

    def _learned_arrays(self) -> dict[str, np.ndarray]:
        return {"log_footprint": self.log_footprint_, "phi": self.phi_}

    def _learned_extra(self) -> dict[str, Any]:
        return {"n_blocks": self.n_blocks_}

    def _restore(self, arrays: Mapping[str, np.ndarray], extra: Mapping[str, Any]) -> None:
        self.log_footprint_ = np.asarray(arrays["log_footprint"], dtype=np.float64)
        self.phi_ = np.asarray(arrays["phi"], dtype=np.float64)
        self.n_blocks_ = int(extra.get("n_blocks", 0))
