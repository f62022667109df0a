"""ResPerfNet, network-level variant: a residual MLP on ``[arch features, device signature vector]``.

After Wang et al., "ResPerfNet: Deep Residual Learning for Regressional Performance Modeling of Deep Neural
Networks" (ICPADS 2020), whose predictor is a stack of fully-connected residual blocks regressing latency from
network descriptors. Here it reads the same inputs as :class:`~nas_latency.models.signature_model.SignatureModel`
(so it generalizes across devices through the signature vector; see :mod:`nas_latency.models.signature_vector`):

* inputs: arch features through the ridge prior's :class:`~nas_latency.signature.FeatureTransform` (``log1p``
  of large dense non-negative columns, standardized), then the signature vector, standardized over the training
  rows;
* target: the centred log-latency, standardized;
* network: ``Linear(d, width) → n_blocks × [x + Linear(ReLU(Linear(x)))] then ReLU → Linear(width, 1)``;
* training: AdamW, mini-batches of ``batch_size``, MSE; ``validation_fraction`` of the **archs** (all their
  rows, every device) is held out, and training stops after ``patience`` epochs without a better validation
  loss (the best weights are kept);
* determinism: torch's RNG is forked and seeded (the caller's global RNG state is untouched), batches are
  shuffled by a seeded numpy generator, and torch runs with ``num_threads`` threads during fit and predict (the
  previous setting is restored).

Weights are stored as npz arrays (the state dict, as float32); loading rebuilds the module. torch is imported
only when the model is fitted, loaded or used.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from nas_latency.errors import InvalidInputError
from nas_latency.models.signature_vector import SignatureCrossDeviceModel

logger = logging.getLogger(__name__)


def _build_network(in_dim: int, width: int, n_blocks: int) -> Any:
    import torch
    from torch import nn

    class ResidualBlock(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc1 = nn.Linear(width, width)
            self.fc2 = nn.Linear(width, width)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.relu(x + self.fc2(torch.relu(self.fc1(x))))

    class ResPerfNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Linear(in_dim, width)
            self.blocks = nn.ModuleList([ResidualBlock() for _ in range(n_blocks)])
            self.head = nn.Linear(width, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = torch.relu(self.stem(x))
            for block in self.blocks:
                h = block(h)
            return self.head(h).squeeze(-1)

    return ResPerfNet()


@contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


class ResPerfNetModel(SignatureCrossDeviceModel):
    """Residual MLP on ``[arch features, device signature vector]`` (kind ``"resperfnet"``)."""

    kind = "resperfnet"

    def __init__(
        self,
        *,
        seed: int = 0,
        signature_k: int = 10,
        signature_method: str = "random",
        signature_archs: Sequence[str] | None = None,
        degenerate_feature: str | None = None,
        n_synthetic: int = 40,
        rows_per_device: int = 1500,
        width: int = 128,
        n_blocks: int = 3,
        learning_rate: float = 1e-3,
        weight_decay: float = 1e-4,
        batch_size: int = 512,
        max_epochs: int = 60,
        patience: int = 8,
        validation_fraction: float = 0.1,
        num_threads: int = 1,
        affine: bool = True,
        affine_ridge: float = 1.0,
    ) -> None:
        self.seed = seed
        self.signature_k = signature_k
        self.signature_method = signature_method
        self.signature_archs = signature_archs
        self.degenerate_feature = degenerate_feature
        self.n_synthetic = n_synthetic
        self.rows_per_device = rows_per_device
        self.width = width
        self.n_blocks = n_blocks
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.num_threads = num_threads
        self.affine = affine
        self.affine_ridge = affine_ridge

    # ---- inputs -------------------------------------------------------------------------------------------
    def _inputs(self, X: np.ndarray, S: np.ndarray) -> np.ndarray:
        Z = np.hstack([self.prior_.transform.transform(X, intercept=False), (S - self.sig_mean_) / self.sig_scale_])
        return Z.astype(np.float32)

    def _check_hyper(self) -> None:
        for name in ("width", "n_blocks", "batch_size", "max_epochs", "patience", "num_threads"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise InvalidInputError(f"{name} must be a positive integer, got {value!r}")
        if not 0.0 < float(self.validation_fraction) < 1.0:
            raise InvalidInputError(f"validation_fraction must be in (0, 1), got {self.validation_fraction!r}")
        if not float(self.learning_rate) > 0 or not float(self.weight_decay) >= 0:
            raise InvalidInputError("learning_rate must be > 0 and weight_decay >= 0")

    # ---- training -------------------------------------------------------------------------------------------
    def _fit_regressor(
        self, X: np.ndarray, S: np.ndarray, y: np.ndarray, arch_index: np.ndarray, rng: np.random.Generator
    ) -> None:
        import torch

        self._check_hyper()
        std = S.std(axis=0)
        self.sig_mean_ = S.mean(axis=0)
        self.sig_scale_ = np.where(std > 0, std, 1.0)
        self.y_mean_ = float(y.mean())
        self.y_scale_ = float(y.std()) if y.std() > 0 else 1.0
        Z = self._inputs(X, S)
        t = ((y - self.y_mean_) / self.y_scale_).astype(np.float32)

        archs = np.unique(arch_index)
        n_val = max(1, int(round(float(self.validation_fraction) * len(archs))))
        if n_val >= len(archs):
            raise InvalidInputError(f"resperfnet: need at least 2 distinct training archs, got {len(archs)}")
        val_archs = rng.choice(archs, size=n_val, replace=False)
        is_val = np.isin(arch_index, val_archs)
        train_rows, val_rows = np.flatnonzero(~is_val), np.flatnonzero(is_val)

        with _torch_threads(int(self.num_threads)), torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(self.seed))
            net = _build_network(Z.shape[1], int(self.width), int(self.n_blocks))
            optimizer = torch.optim.AdamW(
                net.parameters(), lr=float(self.learning_rate), weight_decay=float(self.weight_decay)
            )
            Zt, tt = torch.from_numpy(Z), torch.from_numpy(t)
            Zv, tv = Zt[val_rows], tt[val_rows]
            best_loss, best_state, best_epoch, stale = np.inf, None, 0, 0
            history = []
            for epoch in range(int(self.max_epochs)):
                net.train()
                order = train_rows[rng.permutation(len(train_rows))]
                for start in range(0, len(order), int(self.batch_size)):
                    batch = torch.from_numpy(order[start : start + int(self.batch_size)])
                    optimizer.zero_grad()
                    loss = torch.mean((net(Zt[batch]) - tt[batch]) ** 2)
                    loss.backward()
                    optimizer.step()
                net.eval()
                with torch.no_grad():
                    val_loss = float(torch.mean((net(Zv) - tv) ** 2))
                history.append(val_loss)
                if val_loss < best_loss - 1e-6:
                    best_loss, best_epoch, stale = val_loss, epoch, 0
                    best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
                else:
                    stale += 1
                    if stale >= int(self.patience):
                        break
            assert best_state is not None
            net.load_state_dict(best_state)
            net.eval()
        self.net_ = net
        self.train_info_ = {
            "epochs_run": len(history),
            "best_epoch": best_epoch + 1,
            "best_validation_mse_log": round(best_loss * self.y_scale_**2, 6),
            "n_train_rows": int(len(train_rows)),
            "n_validation_rows": int(len(val_rows)),
        }
        logger.info("resperfnet trained: %s", self.train_info_)

    def _regress(self, X: np.ndarray, signature: np.ndarray) -> np.ndarray:
        import torch

        Z = torch.from_numpy(self._inputs(X, np.broadcast_to(signature, (X.shape[0], len(signature)))))
        out = np.empty(Z.shape[0], dtype=np.float64)
        with _torch_threads(int(self.num_threads)), torch.no_grad():
            for start in range(0, Z.shape[0], 8192):
                out[start : start + 8192] = self.net_(Z[start : start + 8192]).numpy()
        return out * self.y_scale_ + self.y_mean_

    # ---- artifacts ------------------------------------------------------------------------------------------
    def _regressor_arrays(self) -> dict[str, np.ndarray]:
        arrays = {f"net.{k}": v.detach().cpu().numpy() for k, v in self.net_.state_dict().items()}
        arrays.update(
            {
                "sig_mean": np.asarray(self.sig_mean_),
                "sig_scale": np.asarray(self.sig_scale_),
                "y_norm": np.array([self.y_mean_, self.y_scale_]),
            }
        )
        return arrays

    def _regressor_extra(self) -> dict[str, Any]:
        return {"train_info": dict(self.train_info_)}

    def _restore_regressor(self, arrays: Mapping[str, np.ndarray], extra: Mapping[str, Any]) -> None:
        import torch

        self.sig_mean_ = np.asarray(arrays["sig_mean"], dtype=np.float64)
        self.sig_scale_ = np.asarray(arrays["sig_scale"], dtype=np.float64)
        self.y_mean_, self.y_scale_ = (float(v) for v in arrays["y_norm"])
        self.train_info_ = dict(extra.get("train_info", {}))
        state = {k[len("net."):]: torch.from_numpy(np.array(v)) for k, v in arrays.items() if k.startswith("net.")}
        in_dim = int(state["stem.weight"].shape[1])
        net = _build_network(in_dim, int(self.width), int(self.n_blocks))
        net.load_state_dict(state)
        net.eval()
        self.net_ = net
