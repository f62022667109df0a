"""``LatencyProfiler``: an NNI 3.0 :class:`~nni.nas.profiler.Profiler` that predicts a sample's latency (ms).

>>> from nni.nas.hub.pytorch import NasBench201                                      # doctest: +SKIP
>>> profiler = LatencyProfiler(NasBench201(), device="pixel4")                       # embedded predictor
>>> profiler = LatencyProfiler(NasBench201(), device="pixel4", server="127.0.0.1:50051")   # through the server
>>> profiler.profile({"cell/0_1": "conv_3x3", ...})                                  # latency_ms (float)

Two paths from a sample to a prediction:

* **fast path** (NNI's ``NasBench201`` hub space as NAS-Bench-201 builds its CIFAR-10 networks: 16 stem
  channels, 5 cells per stage, 10 labels): sample → NAS-Bench-201 string → the space's built-in model. No module
  is built.
* **generic path** (any other ModelSpace, the hub space with other settings included): sample →
  ``model_space.freeze(sample)`` (a torch module) → :func:`~nas_latency.frontends.torch_to_ir` on
  ``example_input`` → the network's predicted latency on a device registered in ``space``. Where that space's
  built-in model takes arbitrary networks (``accepts_networks``) it is used; elsewhere ``macs_loglinear``, a power
  law of MACs fitted on the device's measurements (:mod:`nas_latency.macs_power_law`, the same estimate
  in-process and through the server). Operators the IR cannot represent raise, or with ``on_unsupported="skip"``
  are skipped explicitly and counted in :attr:`ProfilerStats.skipped_operators`.

Predictions are cached per sample, so a constraint (:mod:`nas_latency.nni.constraints`) and a latency-aware
objective that both ask cost one prediction. On the fast path each prediction comes with the model's predictive
standard deviation of its log latency (:meth:`LatencyProfiler.profile_with_uncertainty`), from which the search
reports how likely its choice is to be truly within the budget; the generic path, and a model that gives none,
give NaN. The backend is an embedded
:class:`~nas_latency.predictor.Predictor` (default store in ``NAS_LATENCY_HOME``), one given in ``predictor=``
(a ``Predictor`` or a :class:`~nas_latency.client.LatencyClient`: same interface), or a client the profiler opens
for ``server="HOST:PORT"``.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable, Literal, Mapping, Sequence

import numpy as np

from nas_latency.errors import FailedPreconditionError, InvalidInputError, NotFoundError
from nas_latency.nni._compat import import_nni

if TYPE_CHECKING:
    import torch

    from nas_latency.client import LatencyClient
    from nas_latency.ir import Network
    from nas_latency.predictor import Predictor

log = logging.getLogger(__name__)

import_nni()
from nni.nas.profiler import Profiler  # noqa: E402  (after import_nni: quiet import)

NB201_SPACE = "nasbench201"
ProfilerPath = Literal["nasbench201", "generic"]


@dataclass
class ProfilerStats:
    """What a profiler has done so far (for progress output and tests)."""

    #: ``profile``/``profile_many`` lookups, cache hits included
    lookups: int = 0
    #: lookups answered from the cache
    cache_hits: int = 0
    #: calls made to the backend (each may predict many samples)
    backend_calls: int = 0
    #: samples predicted by the backend
    predicted: int = 0
    #: operators skipped by the torch frontend (generic path with ``on_unsupported="skip"``), by operator
    skipped_operators: dict[str, int] = field(default_factory=dict)
    #: samples predicted without a predictive standard deviation (generic path, or a model that gives none)
    without_uncertainty: int = 0


def sample_key(sample: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """A hashable key of an NNI sample (labels sorted; values by ``repr``, so ``1`` and ``'1'`` differ)."""
    if not isinstance(sample, Mapping):
        raise InvalidInputError(f"an NNI sample must be a mapping of label -> value, got {type(sample).__name__}")
    return tuple(sorted((str(label), repr(value)) for label, value in sample.items()))


#: NNI's ``NasBench201`` settings that build NAS-Bench-201's own CIFAR-10 networks (what the fast path prices)
NB201_HUB_CONFIG = {"channels": 16, "num_modules": 5, "num_labels": 10}


def _nasbench201_hub(model_space: Any) -> Any:
    """NNI's ``NasBench201`` class if ``model_space`` is one (else None)."""
    try:
        from nni.nas.hub.pytorch import NasBench201
    except ImportError:  # pragma: no cover - the hub ships with nni 3.0
        return None
    return NasBench201 if isinstance(model_space, NasBench201) else None


def is_nasbench201_space(model_space: Any) -> bool:
    """Whether ``model_space`` is NNI's ``NasBench201`` hub space built as NAS-Bench-201's CIFAR-10 networks
    (:data:`NB201_HUB_CONFIG`), so that a sample maps one to one onto an NB201 string the device's model prices.
    Any other space, and the hub space with other stem channels, cells per stage or labels, is not."""
    if _nasbench201_hub(model_space) is None:
        return False
    return all(getattr(model_space, key, None) == value for key, value in NB201_HUB_CONFIG.items())


def _open_backend(predictor: "Predictor | LatencyClient | None", server: str | None,
                  store_url: str | None) -> tuple[Any, bool]:
    """(backend, owned): the given predictor/client, or one opened here (closed by ``close()``)."""
    given = sum(x is not None for x in (predictor, server, store_url))
    if given > 1:
        raise InvalidInputError("give at most one of predictor=, server= and store_url=")
    if predictor is not None:
        return predictor, False
    if server is not None:
        from nas_latency.client import LatencyClient

        return LatencyClient(server), True
    from nas_latency.predictor import Predictor

    return Predictor(store_url=store_url), True


class LatencyProfiler(Profiler):
    """Predicted latency (ms) of a sample of ``model_space`` on a device (registered name or inline signature).

    Parameters
    ----------
    model_space
        Any NNI 3.0 model space (``ModelSpace``); NNI's ``NasBench201`` takes the fast path.
    device, signature
        Exactly one: a device registered in ``space``, or its measurements (arch id → latency_ms).
    space
        The nas-latency space the device belongs to. Default ``nasbench201`` on the fast path; required otherwise.
    predictor, server, store_url
        At most one: the backend (a ``Predictor`` or ``LatencyClient``), a server address to open a client to,
        or a store URL for an embedded predictor. None: the embedded predictor on the default store.
    example_input
        Generic path: the input the frozen module is traced with (batch dimension included).
    on_unsupported
        Generic path: ``"error"`` (default) or ``"skip"`` (explicit, counted) for operators the IR lacks.
    cache_size
        Most samples kept in the cache (least recently used dropped first); None keeps all.
    """

    def __init__(self, model_space: Any, *, device: str | None = None,
                 signature: Mapping[str, float] | None = None, space: str | None = None,
                 predictor: "Predictor | LatencyClient | None" = None, server: str | None = None,
                 store_url: str | None = None, example_input: "torch.Tensor | Sequence[torch.Tensor] | None" = None,
                 on_unsupported: Literal["error", "skip"] = "error", cache_size: int | None = None) -> None:
        super().__init__(model_space)
        if (device is None) == (signature is None):
            raise InvalidInputError("give exactly one of device (a registered name) or signature (measurements)")
        if cache_size is not None and cache_size < 1:
            raise InvalidInputError(f"cache_size must be at least 1 or None, got {cache_size}")
        if on_unsupported not in ("error", "skip"):
            raise InvalidInputError(f"on_unsupported must be 'error' or 'skip', got {on_unsupported!r}")
        self.model_space = model_space
        self.path: ProfilerPath = "nasbench201" if is_nasbench201_space(model_space) else "generic"
        if self.path == "nasbench201":
            if space is not None and space != NB201_SPACE:
                raise InvalidInputError(
                    f"NNI's NasBench201 space is the nas-latency space {NB201_SPACE!r}, not {space!r}")
            space = NB201_SPACE
        elif space is None:
            other = ("NNI's NasBench201 built with " + ", ".join(
                f"{key}={getattr(model_space, key, None)}" for key in NB201_HUB_CONFIG) + " (NAS-Bench-201's "
                "networks have " + ", ".join(f"{k}={v}" for k, v in NB201_HUB_CONFIG.items()) + ")"
                if _nasbench201_hub(model_space) is not None else "a model space other than NNI's NasBench201")
            raise InvalidInputError(f"space= is required for {other}: the nas-latency space whose device measurements "
                                    "calibrate the prediction (samples are traced through the torch frontend)")
        elif example_input is None:
            raise InvalidInputError("example_input= is required to trace samples of this model space to the IR")
        self.space = space
        self.device = device
        self.signature = dict(signature) if signature is not None else None
        self.example_input = example_input
        self.on_unsupported = on_unsupported
        self.cache_size = cache_size
        self.backend, self._owns_backend = _open_backend(predictor, server, store_url)
        if device is not None:  # an unknown device fails here, not inside the strategy at the first sample
            try:
                info = self.backend.device(device, space)
            except BaseException:
                self.close()
                raise
            if info.n_measurements == 0:
                self.close()
                raise NotFoundError(f"device {device!r} has no measurements in space {space!r}")
        self.stats = ProfilerStats()
        #: sample key -> (latency_ms, log_std); log_std NaN where the backend gives none
        self._cache: OrderedDict[tuple[tuple[str, str], ...], tuple[float, float]] = OrderedDict()
        self._lock = threading.RLock()
        #: the estimator of the generic path (the built-in model or ``macs_loglinear``), once known
        self.network_model: str | None = None
        #: False once the backend said its model gives no uncertainty (then only latencies are asked for)
        self._model_gives_uncertainty = True

    # ---- lifecycle ---------------------------------------------------------------------------------------------------
    def close(self) -> None:
        """Close the backend if this profiler opened it."""
        if self._owns_backend:
            self.backend.close()
            self._owns_backend = False

    def __enter__(self) -> "LatencyProfiler":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        target = f"device={self.device!r}" if self.device is not None else f"signature of {len(self.signature or {})}"
        return (f"LatencyProfiler(space={self.space!r}, {target}, path={self.path!r}, "
                f"backend={type(self.backend).__name__})")

    # ---- profiling ---------------------------------------------------------------------------------------------------
    def profile(self, sample: Mapping[str, Any]) -> float:
        """Predicted latency in ms of ``sample`` (cached)."""
        return float(self.profile_many([sample])[0])

    def profile_many(self, samples: Iterable[Mapping[str, Any]]) -> np.ndarray:
        """Predicted latency in ms of each sample, in order; the uncached ones in one backend call."""
        return self.profile_with_uncertainty(samples)[0]

    def profile_with_uncertainty(self, samples: Iterable[Mapping[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
        """(latency_ms, log_std) of each sample, in order: the prediction and the model's predictive standard
        deviation of its natural log (NaN where the backend gives none: the generic path, or a model without
        uncertainty). The uncached samples are predicted in one backend call."""
        samples = list(samples)
        keys = [sample_key(s) for s in samples]
        latency = np.empty(len(samples), dtype=np.float64)
        log_std = np.empty(len(samples), dtype=np.float64)
        with self._lock:
            missing: dict[tuple[tuple[str, str], ...], Mapping[str, Any]] = {}
            for i, key in enumerate(keys):
                self.stats.lookups += 1
                hit = self._cache.get(key)
                if hit is None:
                    missing.setdefault(key, samples[i])
                else:
                    self.stats.cache_hits += 1
                    self._cache.move_to_end(key)
                    latency[i], log_std[i] = hit
            if missing:
                values, stds = self._predict(list(missing.values()))
                fresh = dict(zip(missing, zip(values.tolist(), stds.tolist())))
                for key, value in fresh.items():
                    self._cache[key] = value
                if self.cache_size is not None:
                    while len(self._cache) > self.cache_size:
                        self._cache.popitem(last=False)
                for i, key in enumerate(keys):
                    if key in fresh:
                        latency[i], log_std[i] = fresh[key]
        return latency, log_std

    def arch_of(self, sample: Mapping[str, Any]) -> str | None:
        """The NAS-Bench-201 string of a sample on the fast path; None on the generic path."""
        if self.path != "nasbench201":
            return None
        from search_spaces.nasbench201.nni_adapter import from_nni_sample

        return from_nni_sample(sample)

    def fastest(self) -> tuple[str, float]:
        """Fast path: the NAS-Bench-201 string predicted fastest on the device, and its latency (ms), over every
        architecture of the space (one batched backend call, not counted in :attr:`stats`). The floor under which
        no budget can be met."""
        if self.path != "nasbench201":
            raise InvalidInputError("fastest() needs the NasBench201 fast path; this profiler traces samples")
        from search_spaces import get_space

        archs = get_space(NB201_SPACE).measured_archs()
        latency = np.asarray(self.backend.predict(NB201_SPACE, archs, **self._selector()), dtype=np.float64)
        best = int(np.argmin(latency))
        return archs[best], float(latency[best])

    def cached(self) -> dict[tuple[tuple[str, str], ...], float]:
        """A copy of the cache: sample key → latency_ms."""
        with self._lock:
            return {key: latency for key, (latency, _) in self._cache.items()}

    # ---- backends ----------------------------------------------------------------------------------------------------
    def _selector(self) -> dict[str, Any]:
        return {"device": self.device} if self.device is not None else {"signature": self.signature}

    def _predict(self, samples: Sequence[Mapping[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
        self.stats.backend_calls += 1
        self.stats.predicted += len(samples)
        if self.path == "nasbench201":
            from search_spaces.nasbench201.nni_adapter import from_nni_sample

            archs = [from_nni_sample(s) for s in samples]
            values, stds = self._predict_archs(archs)
        else:
            values = self._predict_networks([self._network(s) for s in samples])
            stds = np.full(len(samples), np.nan)
        if values.shape != (len(samples),) or not np.all(np.isfinite(values)) or stds.shape != values.shape:
            raise InvalidInputError(f"the backend returned {values.shape} latencies and {stds.shape} standard "
                                    f"deviations for {len(samples)} samples (or non-finite latencies)")
        self.stats.without_uncertainty += int(np.count_nonzero(np.isnan(stds)))
        return values, stds

    def _predict_archs(self, archs: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Fast path: the latencies of NAS-Bench-201 strings and their log standard deviations (NaN where the
        space's model gives none: then the plain prediction, logged once)."""
        if self._model_gives_uncertainty:
            try:
                values, stds = self.backend.predict_with_uncertainty(NB201_SPACE, archs, **self._selector())
                return np.asarray(values, dtype=np.float64), np.asarray(stds, dtype=np.float64)
            except FailedPreconditionError as error:  # a model without uncertainty: latencies only, from now on
                log.info("%s: %s; predictions come without a standard deviation", self, error)
                self._model_gives_uncertainty = False
        values = self.backend.predict(NB201_SPACE, archs, **self._selector())
        return np.asarray(values, dtype=np.float64), np.full(len(archs), np.nan)

    def _network(self, sample: Mapping[str, Any]) -> "Network":
        from nas_latency.frontends import torch_to_ir

        frozen = self.model_space.freeze(dict(sample))
        conversion = torch_to_ir(frozen, self.example_input,  # type: ignore[arg-type]
                                 on_unsupported=self.on_unsupported)
        for node in conversion.skipped:
            self.stats.skipped_operators[node.operator] = self.stats.skipped_operators.get(node.operator, 0) + 1
        if conversion.skipped:
            log.warning("sample %s: the torch frontend skipped %d operator(s): %s", dict(sample),
                        len(conversion.skipped), ", ".join(sorted({n.operator for n in conversion.skipped})))
        return conversion.network

    def _predict_networks(self, networks: list["Network"]) -> np.ndarray:
        """The backend's answer for arbitrary networks (the embedded :class:`Predictor` or the server answer
        alike: the space's built-in model, or ``macs_loglinear`` where that takes none), its estimator noted."""
        reply = self.backend.predict_networks(self.space, networks, **self._selector())
        if reply.model != self.network_model:
            log.info("%s: networks of %s are predicted by %s", self, self.space, reply.model)
        self.network_model = reply.model
        return np.asarray(reply.latency_ms, dtype=np.float64)
