"""A differentiable expected-latency loss on the live architecture parameters of DARTS / Proxyless (NNI 3.0).

NNI 3.0's own latency penalty (``ExpectationProfilerPenalty``) is computed from ``export_probs()``: Python floats
taken from detached tensors, so it changes the loss value but gives the architecture parameters no gradient.
Here the expectation is taken over ``softmax(alpha)`` of the live ``nn.Parameter`` s::

    E[latency_ms] = base_ms + Σ_label softmax(alpha_label) · table[label]

with the per-choice table of :mod:`nas_latency.nni.latency_table`. Gradients flow into every alpha.

Use it as a drop-in ``penalty`` of NNI's one-shot strategies::

    penalty = LatencyPenalty(table, target_ms=8.0, scale=0.5)
    strategy = DARTS(penalty=penalty)          # or Proxyless / GumbelDARTS
    penalty.bind(strategy)                     # the alphas are read from the strategy at every step

or directly in your own loop: ``expected_latency(table, supernet)`` is a differentiable tensor.
Where alphas come from: a DARTS-family strategy (``strategy._arch_parameters``, label → alpha, created when
the strategy mutates the space), or any module containing NNI's differentiable supernet layers
(``DifferentiableMixedLayer``, ``ProxylessMixedLayer``, ``DifferentiableMixedInput``, mixed operations): each
carries ``_arch_alpha`` and its label. Probabilities are the plain softmax of alpha (for GumbelDARTS this is the
distribution the Gumbel samples are drawn from).
"""

from __future__ import annotations

from typing import Any, Literal, Mapping

import torch
from torch import nn

from nas_latency.errors import FailedPreconditionError, InvalidInputError
from nas_latency.nni._compat import import_nni
from nas_latency.nni.latency_table import LatencyTable, TableProfiler

import_nni()
from nni.nas.oneshot.pytorch.profiler import ExpectationProfilerPenalty  # noqa: E402

Nonlinear = Literal["linear", "positive", "negative", "absolute"]
Aggregate = Literal["add", "mul"]


def _module_alphas(module: nn.Module) -> dict[str, tuple[torch.Tensor, tuple[Any, ...]]]:
    """label → (alpha, candidate values) of every differentiable supernet layer inside ``module``."""
    found: dict[str, tuple[torch.Tensor, tuple[Any, ...]]] = {}
    for sub in module.modules():
        try:
            alpha = getattr(sub, "_arch_alpha")
        except AttributeError:
            continue
        if isinstance(alpha, nn.ParameterDict):  # a mixed operation: one alpha per value choice in its arguments
            specs = sub.simplify() if hasattr(sub, "simplify") else {}
            for name, param in alpha.items():
                values = tuple(getattr(specs.get(name), "values", range(len(param))))
                found.setdefault(str(name), (param, values))
        elif isinstance(alpha, torch.Tensor) and getattr(sub, "label", None) is not None:
            names = getattr(sub, "names", None)  # LayerChoice candidates; InputChoice: indices
            values = tuple(names) if names is not None else tuple(range(len(alpha)))
            found.setdefault(str(sub.label), (alpha, values))
    return found


def _strategy_supernet(strategy: Any) -> nn.Module | None:
    try:
        net = strategy.supernet  # one-shot strategies: the mutated space, once initialized
    except Exception:
        return None
    return net if isinstance(net, nn.Module) else None


def live_alphas(source: Any) -> dict[str, tuple[torch.Tensor, tuple[Any, ...]]]:
    """label → (the live architecture parameter, the candidate values its entries stand for).

    ``source``: a DARTS-family strategy (once it has mutated the space: after ``initialize``), a supernet, or a
    one-shot Lightning module -- anything whose ``modules()`` contain NNI's differentiable layers."""
    if isinstance(source, nn.Module):
        found = _module_alphas(source)
    else:
        supernet = _strategy_supernet(source)
        found = _module_alphas(supernet) if supernet is not None else {}
        params = getattr(source, "_arch_parameters", None)  # DARTS: label -> alpha, in the mutable's value order
        if isinstance(params, Mapping):
            for label, alpha in params.items():
                found.setdefault(str(label), (alpha, tuple(range(len(alpha)))))
    if not found:
        raise FailedPreconditionError(
            f"no architecture parameters in {type(source).__name__}: give a DARTS/Proxyless strategy after it has "
            "mutated the model space (strategy.initialize), or the mutated supernet"
        )
    return found


def live_probabilities(table: LatencyTable, source: Any) -> dict[str, torch.Tensor]:
    """label → ``softmax(alpha)`` (with gradient), reordered to the table's candidate order, for every label the
    table and the source share. A table label the source lacks, or a candidate the table lacks, is an error."""
    alphas = live_alphas(source)
    missing = [label for label in table.labels if label not in alphas]
    if missing:
        raise InvalidInputError(f"the supernet has no architecture parameters for table label(s) {', '.join(missing)}; "
                                f"its labels: {', '.join(sorted(alphas))}")
    out: dict[str, torch.Tensor] = {}
    for label in table.labels:
        alpha, values = alphas[label]
        probs = torch.softmax(alpha, dim=-1)
        if tuple(values) != tuple(table.values[label]):
            order = [values.index(v) if v in values else -1 for v in table.values[label]]
            if -1 in order or sorted(order) != list(range(len(values))):
                raise InvalidInputError(f"label {label!r}: supernet candidates {list(values)} differ from the table's "
                                        f"{list(table.values[label])}")
            probs = probs[torch.tensor(order, device=probs.device)]
        out[label] = probs
    return out


class ExpectedLatency(nn.Module):
    """``E[latency_ms] = base_ms + Σ_label p_label · table[label]`` as a module (the table lives in buffers, so it
    moves with ``.to(device)``)."""

    def __init__(self, table: LatencyTable) -> None:
        super().__init__()
        self.table = table
        self.register_buffer("base_ms", torch.tensor(float(table.base_ms)))
        self._keys = {label: f"lat_{i}" for i, label in enumerate(table.labels)}
        for label, key in self._keys.items():
            self.register_buffer(key, torch.tensor(table.latency_ms[label], dtype=torch.float32))

    def forward(self, probabilities: Mapping[str, torch.Tensor]) -> torch.Tensor:
        total = self.base_ms.clone()
        for label, key in self._keys.items():
            probs = probabilities.get(label)
            if probs is None:
                continue  # a label left out counts at its cheapest candidate (0 ms over base)
            costs = getattr(self, key)
            total = total + (probs.to(costs.dtype) * costs).sum()
        return total

    def of(self, source: Any) -> torch.Tensor:
        """Expected latency under the live architecture parameters of ``source`` (differentiable)."""
        return self(live_probabilities(self.table, source))


def expected_latency(table: LatencyTable, source: Any) -> torch.Tensor:
    """Differentiable expected latency (ms) of the architecture distribution ``source``'s live alphas define."""
    return ExpectedLatency(table).of(source)


class LatencyPenalty(ExpectationProfilerPenalty):
    """NNI's penalty formula on the live alphas:
    ``loss + scale · nonlinear(E[latency] / target_ms − 1)`` (``aggregate="add"``) or
    ``loss · (1 + nonlinear(...))^scale`` (``"mul"``). Accepted by ``DARTS(penalty=...)`` and its subclasses;
    call :meth:`bind` with the strategy (or the supernet) before training."""

    def __init__(self, table: LatencyTable, *, target_ms: float, scale: float = 1.0,
                 nonlinear: Nonlinear = "positive", aggregate: Aggregate = "add", source: Any = None) -> None:
        if not target_ms > 0:
            raise InvalidInputError(f"target_ms must be positive, got {target_ms}")
        super().__init__(TableProfiler(table), target_ms, scale, nonlinear=nonlinear, aggregate=aggregate)
        self.expected = ExpectedLatency(table)
        object.__setattr__(self, "_source", source)  # not a submodule: no parameter sharing, no cycles

    def bind(self, source: Any) -> "LatencyPenalty":
        """Read the alphas from ``source`` (a DARTS-family strategy, a supernet or a one-shot module)."""
        object.__setattr__(self, "_source", source)
        return self

    def expected_latency(self) -> torch.Tensor:
        source = self.__dict__.get("_source")
        if source is None:
            raise FailedPreconditionError("LatencyPenalty is not bound: call penalty.bind(strategy) before training")
        return self.expected.of(source)

    def forward(self, loss: torch.Tensor, sample: Any = None) -> tuple[torch.Tensor, dict[str, Any]]:
        """``sample`` (NNI passes its detached ``export_probs()``) is ignored: the live alphas are used."""
        latency = self.expected_latency()
        normalized = self.nonlinear_fn(latency / self.baseline - 1)
        new_loss = self.aggregate_fn(loss, normalized)
        details = {"loss_original": loss.detach(), "expected_latency_ms": latency.detach(),
                   "normalized_penalty": torch.as_tensor(normalized).detach(), "loss_final": new_loss.detach()}
        return new_loss, details
