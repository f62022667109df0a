"""ResPerfNet's layer model: a residual multi-layer perceptron regressing a layer's time from its features.

Architecture (as in ResPerfNet, sized for a few hundred to a few thousand micro-kernels)::

    x (standardized log features + family one-hot)
      → Linear(d, width) → ReLU
      → blocks × [ h + Linear(width, width)(ReLU(Linear(width, width)(h))) ] → ReLU
      → Linear(width, 1)  =  standardized log time

Trained with Adam on the mean squared error of log time (≈ relative error), mini-batches, a fixed number of
epochs, cosine learning-rate decay, L2 weight decay, from a fixed seed: deterministic. Plain numpy (no framework
needed at prediction time); the weights go in the artifact's ``.npz``.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from nas_latency.errors import InvalidInputError
from nas_latency.ir import FeatureMatrix
from nas_latency.models.base import LatencyRegressor
from nas_latency.models.layer_features import RAW
from nas_latency.models.layer_roofline import _check_fit_inputs
from nas_latency.models.linalg import integer_setting



def _columns(names: tuple[str, ...]) -> list[int]:
    return [i for i, name in enumerate(names) if name not in RAW]


class ResPerfNetLayerModel(LatencyRegressor):
    """Residual MLP on layer features (log time)."""

    kind = "layer_resperfnet"

    def __init__(self, *, width: int = 48, blocks: int = 2, epochs: int = 200, batch_size: int = 64,
                 learning_rate: float = 3e-3, weight_decay: float = 1e-4, seed: int = 0) -> None:
        self.width = width
        self.blocks = blocks
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.seed = seed

    # ---- network ----------------------------------------------------------------------------------------------
    def _init_weights(self, d: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        width, blocks = int(self.width), int(self.blocks)

        def he(n_in: int, n_out: int, scale: float = 1.0) -> np.ndarray:
            return rng.normal(0.0, scale * np.sqrt(2.0 / n_in), size=(n_in, n_out))

        weights = {"W_in": he(d, width), "b_in": np.zeros(width)}
        for k in range(blocks):
            weights[f"W{k}a"] = he(width, width)
            weights[f"b{k}a"] = np.zeros(width)
            weights[f"W{k}b"] = he(width, width, 0.1)  # small: each block starts near the identity
            weights[f"b{k}b"] = np.zeros(width)
        weights["W_out"] = he(width, 1, 0.5)
        weights["b_out"] = np.zeros(1)
        return weights

    def _forward(self, W: Mapping[str, np.ndarray], Z: np.ndarray, keep: bool = False
                 ) -> tuple[np.ndarray, list[np.ndarray]]:
        cache: list[np.ndarray] = []
        pre = Z @ W["W_in"] + W["b_in"]
        h = np.maximum(pre, 0.0)
        if keep:
            cache += [pre, h]
        for k in range(int(self.blocks)):
            a = h @ W[f"W{k}a"] + W[f"b{k}a"]
            r = np.maximum(a, 0.0)
            h_next = h + r @ W[f"W{k}b"] + W[f"b{k}b"]
            if keep:
                cache += [a, r, h_next]
            h = h_next
        out_h = np.maximum(h, 0.0)
        if keep:
            cache.append(out_h)
        return (out_h @ W["W_out"] + W["b_out"])[:, 0], cache

    def _gradients(self, W: Mapping[str, np.ndarray], Z: np.ndarray, target: np.ndarray
                   ) -> tuple[float, dict[str, np.ndarray]]:
        pred, cache = self._forward(W, Z, keep=True)
        n = len(target)
        diff = pred - target
        loss = float(np.mean(diff**2))
        g: dict[str, np.ndarray] = {}
        d_out = (2.0 / n) * diff[:, None]
        out_h = cache[-1]
        g["W_out"] = out_h.T @ d_out
        g["b_out"] = d_out.sum(axis=0)
        blocks = int(self.blocks)
        h_final = cache[-2] if blocks else cache[1]
        dh = (d_out @ W["W_out"].T) * (h_final > 0)
        for k in reversed(range(blocks)):
            a, r = cache[2 + 3 * k], cache[3 + 3 * k]
            h_prev = cache[1 + 3 * k] if k == 0 else cache[4 + 3 * (k - 1)]
            g[f"W{k}b"] = r.T @ dh
            g[f"b{k}b"] = dh.sum(axis=0)
            da = (dh @ W[f"W{k}b"].T) * (a > 0)
            g[f"W{k}a"] = h_prev.T @ da
            g[f"b{k}a"] = da.sum(axis=0)
            dh = dh + da @ W[f"W{k}a"].T
        pre = cache[0]
        dpre = dh * (pre > 0)
        g["W_in"] = Z.T @ dpre
        g["b_in"] = dpre.sum(axis=0)
        return loss, g

    # ---- contract -----------------------------------------------------------------------------------------------
    def fit(self, features: FeatureMatrix, latency_ms: np.ndarray) -> "ResPerfNetLayerModel":
        y = _check_fit_inputs(self, features, latency_ms)
        integer_setting(self, "width")
        if isinstance(self.blocks, bool) or not isinstance(self.blocks, (int, np.integer)) or self.blocks < 0:
            raise InvalidInputError(f"blocks must be an integer >= 0, got {self.blocks!r}")
        epochs = integer_setting(self, "epochs")
        X = features.values[:, _columns(features.names)]
        self.x_mean_ = X.mean(axis=0)
        std = X.std(axis=0)
        self.x_scale_ = np.where(std > 0, std, 1.0)
        t = np.log(y)
        self.t_mean_, self.t_scale_ = float(t.mean()), float(t.std() or 1.0)
        Z = (X - self.x_mean_) / self.x_scale_
        target = (t - self.t_mean_) / self.t_scale_
        rng = np.random.default_rng(int(self.seed))
        W = self._init_weights(Z.shape[1], rng)
        m = {k: np.zeros_like(v) for k, v in W.items()}
        v = {k: np.zeros_like(val) for k, val in W.items()}
        lr, decay, beta1, beta2, eps = float(self.learning_rate), float(self.weight_decay), 0.9, 0.999, 1e-8
        batch = min(integer_setting(self, "batch_size"), len(target))
        steps_per_epoch = int(np.ceil(len(target) / batch))
        total = epochs * steps_per_epoch
        step = 0
        for _ in range(epochs):
            order = rng.permutation(len(target))
            for start in range(0, len(target), batch):
                rows = order[start : start + batch]
                step += 1
                # cosine learning-rate decay to 5 % of the start
                rate = lr * (0.05 + 0.95 * 0.5 * (1.0 + np.cos(np.pi * step / total)))
                _, grads = self._gradients(W, Z[rows], target[rows])
                for k in W:
                    grad = grads[k] + (decay * W[k] if k.startswith("W") else 0.0)
                    m[k] = beta1 * m[k] + (1 - beta1) * grad
                    v[k] = beta2 * v[k] + (1 - beta2) * grad * grad
                    m_hat = m[k] / (1 - beta1**step)
                    v_hat = v[k] / (1 - beta2**step)
                    W[k] = W[k] - rate * m_hat / (np.sqrt(v_hat) + eps)
        self.weights_ = W
        self._remember_schema(features)
        return self

    def predict(self, features: FeatureMatrix) -> np.ndarray:
        values = self._check_features(features)
        Z = (values[:, _columns(self.feature_names_)] - self.x_mean_) / self.x_scale_
        out, _ = self._forward(self.weights_, Z)
        return np.exp(out * self.t_scale_ + self.t_mean_)

    def _learned_arrays(self) -> dict[str, np.ndarray]:
        arrays = {f"w.{k}": v for k, v in self.weights_.items()}
        arrays.update(x_mean=self.x_mean_, x_scale=self.x_scale_, t_stats=np.array([self.t_mean_, self.t_scale_]))
        return arrays

    def _restore(self, arrays: Mapping[str, np.ndarray], extra: Mapping[str, Any]) -> None:
        self.weights_ = {k[2:]: np.asarray(v, dtype=np.float64) for k, v in arrays.items() if k.startswith("w.")}
        self.x_mean_ = np.asarray(arrays["x_mean"], dtype=np.float64)
        self.x_scale_ = np.asarray(arrays["x_scale"], dtype=np.float64)
        self.t_mean_, self.t_scale_ = (float(v) for v in arrays["t_stats"])
