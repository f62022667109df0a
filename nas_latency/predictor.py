"""The embedded predictor: onboard devices and predict latencies in-process.

``Predictor`` is the library's front door and the interface the gRPC client mirrors. State (devices, their
measurements, trained models) lives in a store: SQLite in ``NAS_LATENCY_HOME`` by default, or any store URL.
A space's built-in model is loaded from the store, or trained from the bundled data on first use.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from nas_latency.builtin_models import (
    BUNDLE_KIND,
    BUNDLE_NAME,
    DEFAULT_MODEL_SPECS,
    MIN_STORE_MEASUREMENTS,
    BuiltinBundle,
    ProgressCallback,
    train_bundle,
)
from nas_latency.device_info import ContributionResult, DeviceInfo
from nas_latency.errors import InvalidInputError, NotFoundError
from nas_latency.ir import FeatureMatrix, Network
from nas_latency.ir.ops import VIEW_KINDS, OpKind
from nas_latency.macs_power_law import MACS_MODEL, MacsPowerLaw, fit_macs_power_law
from nas_latency.measurements import (
    MIN_MEASUREMENTS,
    MeasuredArchs,
    check_enough_to_explain,
    measurements_from_mapping,
    validate_measurements,
)
from nas_latency.models.adaptation_summary import AdaptationSummary, summarize_adaptation
from nas_latency.models.artifacts import artifact_from_bytes
from nas_latency.models.base import DeviceAdaptation
from nas_latency.store import MeasurementRow, Store, open_store
from nas_latency.store.validate import check_device
from search_spaces import SearchSpace, get_space, space_names

log = logging.getLogger(__name__)

#: layer kinds that do no work at run time
NO_WORK_KINDS = VIEW_KINDS | {OpKind.ZERO}

#: the store's source of the measurements ``register_device`` writes (registering replaces them)
REGISTER_SOURCE = "register"
#: the store's source of the measurements ``contribute_measurements`` adds
CONTRIBUTE_SOURCE = "contribute"
#: adapted devices kept in memory (each holds its predictions for the space's measured archs)
MAX_CACHED_ADAPTATIONS = 256


def measurement_digest(space: str, measured: MeasuredArchs) -> str:
    """A digest of a space and its set of (arch, latency) measurements, exact floats, in any order: devices (and
    inline signatures) with the same measurements share one adapted model."""
    pairs = sorted(zip(measured.archs, (float(v).hex() for v in measured.latency_ms)))
    text = repr((space, tuple(pairs)))
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def in_canonical_order(measured: MeasuredArchs) -> MeasuredArchs:
    """``measured`` sorted by arch id. Models are adapted on measurements in this order, so a device's adapted
    model is the same to the last bit whether its measurements come from a CSV, the store or a gRPC signature,
    in this process or another."""
    order = sorted(range(len(measured.archs)), key=measured.archs.__getitem__)
    return MeasuredArchs(measured.space, tuple(measured.archs[i] for i in order),
                         tuple(measured.latency_ms[i] for i in order))


@dataclass(eq=False)
class AdaptedDevice:
    """A space's built-in model adapted to one set of measurements, shared by every device (or inline signature)
    with exactly those measurements. The predictions over the space's measured archs, and their uncertainty,
    are computed once, on first use (:meth:`Predictor.adapted_table`, :meth:`Predictor.adapted_log_std_table`)."""

    space: str
    #: ``"<space>:<measurement digest>"``
    key: str
    measured: MeasuredArchs
    adaptation: DeviceAdaptation
    table: np.ndarray | None = None
    log_std_table: np.ndarray | None = None
    #: the estimate for arbitrary networks where the built-in model takes none (fitted on first use)
    macs_law: MacsPowerLaw | None = None


@dataclass(frozen=True)
class NetworkPrediction:
    """Latencies (ms) of arbitrary networks, in request order, and the estimator that gave them
    (``builtin:<model spec>`` or ``macs_loglinear``)."""

    latency_ms: np.ndarray
    model: str


@dataclass
class _SpaceCache:
    """Per-space state: the bundle, and features of the space's measured archs (computed once)."""

    bundle: BuiltinBundle
    version: int
    index: dict[str, int] | None = None
    features: FeatureMatrix | None = None


def check_has_work(network: Network) -> None:
    """Refuse a network that computes nothing a cost model can price: no layers, or only views and zeros (what is
    left of a network whose operators a frontend skipped). Predicting it would answer about 0 ms."""
    if not any(layer.op not in NO_WORK_KINDS for layer in network.layers):
        kinds = ", ".join(sorted({layer.op.value for layer in network.layers})) or "none"
        raise InvalidInputError(f"network {network.name!r} computes nothing to predict the latency of (its "
                                f"{len(network.layers)} layer(s): {kinds}); were its operators skipped?")


class Predictor:
    """Predict latency (ms) of architectures of a space on a registered device or an inline signature."""

    def __init__(self, *, store: Store | None = None, store_url: str | None = None,
                 progress: ProgressCallback | None = None) -> None:
        if store is not None and store_url is not None:
            raise InvalidInputError("give either store or store_url, not both")
        self._owns_store = store is None
        self.store = store if store is not None else open_store(store_url)
        self.progress = progress
        self._lock = threading.RLock()
        self._spaces: dict[str, _SpaceCache] = {}
        # key of the measurements ("<space>:<digest>") -> the adapted model, least recently used first
        self._adapted: OrderedDict[str, AdaptedDevice] = OrderedDict()

    def close(self) -> None:
        if self._owns_store:
            self.store.close()

    def __enter__(self) -> "Predictor":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- spaces and models ------------------------------------------------------------------------------
    def spaces(self) -> list[str]:
        return space_names()

    def bundle(self, space: str) -> BuiltinBundle:
        return self._space(space).bundle

    def _space(self, space_name: str) -> _SpaceCache:
        with self._lock:
            cached = self._spaces.get(space_name)
            if cached is not None:
                return cached
            space = get_space(space_name)
            try:
                stored = self.store.get_artifact(space.name, BUNDLE_NAME)
            except NotFoundError:
                stored = None
            if stored is None:
                log.info("no built-in model for %s in %s; training one from the bundled data", space.name,
                         self.store.url)
                bundle, version = self._train(space.name)
            else:
                bundle = BuiltinBundle.from_artifact(artifact_from_bytes(stored.blob, source=f"{space.name}/builtin"),
                                                     source=f"{self.store.url} {space.name}/builtin v{stored.version}")
                version = stored.version
                expected = space.model_features(space.measured_archs()[:1]).schema_hash
                if bundle.model.feature_schema_hash_ != expected:
                    log.warning("stored %s model has an outdated feature schema; retraining", space.name)
                    bundle, version = self._train(space.name)
                elif bundle.model_spec != DEFAULT_MODEL_SPECS.get(space.name, bundle.model_spec):
                    log.warning("the stored %s model is %s, not this release's default %s (kept; `nas-latency "
                                "models train --space %s` switches)", space.name, bundle.model_spec,
                                DEFAULT_MODEL_SPECS[space.name], space.name)
            cache = _SpaceCache(bundle, version)
            self._spaces[space_name] = cache
            return cache

    def _train(self, space_name: str, *, model_spec: str | None = None,
               exclude_devices: Sequence[str] = ()) -> tuple[BuiltinBundle, int]:
        extra = self._store_training_devices(space_name)
        bundle = train_bundle(space_name, model_spec=model_spec, extra_devices=extra, exclude_devices=exclude_devices,
                              progress=self.progress)
        artifact = bundle.to_artifact()
        ref = self.store.put_artifact(space_name, BUNDLE_NAME, kind=BUNDLE_KIND, manifest=artifact.manifest(),
                                      blob=artifact.to_bytes())
        return bundle, ref.version

    def _store_training_devices(self, space_name: str) -> dict[str, dict[str, float]]:
        names = self.store.devices_with_measurements(space_name, MIN_STORE_MEASUREMENTS)
        return {name: self._device_latencies(name, space_name) for name in names}

    def train(self, space: str, *, model_spec: str | None = None, exclude_devices: Sequence[str] = ()) -> BuiltinBundle:
        """(Re)train the space's built-in model on the bundled devices and every store device with at least
        ``MIN_STORE_MEASUREMENTS`` measurements, minus ``exclude_devices``; the new version is stored and used
        from now on."""
        space_name = get_space(space).name
        with self._lock:
            bundle, version = self._train(space_name, model_spec=model_spec, exclude_devices=exclude_devices)
            self._spaces[space_name] = _SpaceCache(bundle, version)
            for key in [k for k, a in self._adapted.items() if a.space == space_name]:
                del self._adapted[key]
            return bundle

    def signature_set(self, space: str, size: int) -> list[str]:
        """The architectures a new device should measure, most informative first."""
        return self._space(get_space(space).name).bundle.signature(size)

    # ---- devices ------------------------------------------------------------------------------------------
    def register_device(self, name: str, space: str, measurements: Mapping[str, float] | MeasuredArchs, *,
                        description: str | None = None) -> DeviceInfo:
        """Register (or re-register) ``name`` in ``space`` with these measurements; they replace the device's
        previously registered ones in that space. Validated completely before anything is written."""
        space_obj = get_space(space)
        check_device(name)  # before the adaptation, which may train the built-in model and store it
        measured = measurements if isinstance(measurements, MeasuredArchs) else measurements_from_mapping(
            space_obj, measurements, where=f"measurements of {name}")
        # Adapting first proves the measurements are usable before anything is written; the adaptation is cached,
        # so explaining the device or predicting for it next does not adapt again.
        self.adapted(space_obj.name, signature=measured)
        rows = [MeasurementRow(a, l) for a, l in zip(measured.archs, measured.latency_ms)]
        with self._lock:
            self.store.upsert_device(name, description=description)
            self.store.replace_measurements(name, space_obj.name, rows, source=REGISTER_SOURCE)
        return self.device(name, space_obj.name)

    def contribute_measurements(self, device: str, space: str,
                                measurements: Mapping[str, float] | Iterable[MeasurementRow], *,
                                request_id: str | None = None,
                                environment: Mapping[str, Any] | None = None) -> ContributionResult:
        """Add measurements of the registered ``device`` in ``space`` (at least one), keeping its earlier ones: a
        re-measured arch replaces its earlier contributed value, and an arch both registered and contributed counts
        at the geometric mean of the two. Validated completely, then committed; the device's model is adapted to
        all its measurements at once where it has enough (``model_refitted``).

        A ``request_id`` makes a retry safe: the same id again writes nothing and returns the first answer with
        ``duplicate_request=True``; the same id with other content raises :class:`ConflictError`. ``environment``
        (JSON-serializable) is stored with each row that has none of its own: the runtime, versions, threads.
        """
        space_obj = get_space(space)
        check_device(device)
        where = f"contribution to {device}"
        if isinstance(measurements, Mapping):
            measured = measurements_from_mapping(space_obj, measurements, where=where, min_rows=1)
            rows = [MeasurementRow(a, v) for a, v in zip(measured.archs, measured.latency_ms)]
        else:
            given = list(measurements)
            measured = validate_measurements(space_obj, [(i, r.arch, r.latency_ms) for i, r in enumerate(given, 1)],
                                             where=where, min_rows=1)
            rows = [replace(r, arch=a, latency_ms=v) for r, a, v in zip(given, measured.archs, measured.latency_ms)]
        if environment is not None:
            rows = [r if r.environment is not None else replace(r, environment=dict(environment)) for r in rows]
        with self._lock:
            result = self.store.add_measurements(device, space_obj.name, rows, source=CONTRIBUTE_SOURCE,
                                                 request_id=request_id)
        latencies = self._device_latencies(device, space_obj.name)  # read once: adapted() gets them as a signature
        refitted = len(latencies) >= MIN_MEASUREMENTS
        if refitted:
            self.adapted(space_obj.name, signature=measurements_from_mapping(space_obj, latencies,
                                                                            where=f"device {device}"))
        record = self.store.get_device(device)
        info = DeviceInfo(record.name, space_obj.name, record.description, len(latencies))
        return ContributionResult(result.inserted, result.replaced, result.duplicate_request, info, refitted)

    def device(self, name: str, space: str) -> DeviceInfo:
        device = self.store.get_device(name)
        count = len(self._device_latencies(name, get_space(space).name))
        return DeviceInfo(device.name, get_space(space).name, device.description, count)

    def devices(self, space: str | None = None) -> list[DeviceInfo]:
        infos = []
        for summary in self.store.list_devices(get_space(space).name if space else None):
            for space_name, count in sorted(summary.measurement_counts.items()):
                if space is None or space_name == get_space(space).name:
                    infos.append(DeviceInfo(summary.name, space_name, summary.description, count))
        return infos

    def device_model(self, name: str, space: str) -> AdaptationSummary:
        """How the space's built-in model explains ``device`` (:mod:`~nas_latency.models.adaptation_summary`): the
        member model its measurements chose, with the evidence. Errors as :meth:`device_measurements`."""
        adapted = self.adapted(space, device=name)
        return summarize_adaptation(adapted.adaptation, adapted.measured.archs)

    def explained_device(self, name: str, space: str) -> AdaptationSummary | None:
        """:meth:`device_model`, or ``None`` while the device has fewer than ``MIN_MEASUREMENTS`` measurements in
        ``space`` (none included); ``NotFoundError`` for an unknown device."""
        space_obj = get_space(space)
        latencies = self._device_latencies(name, space_obj.name)  # read once: adapted() gets them as a signature
        if len(latencies) < MIN_MEASUREMENTS:
            self.store.get_device(name)  # NotFoundError naming an unknown device
            return None
        measured = measurements_from_mapping(space_obj, latencies, where=f"device {name}")
        adapted = self.adapted(space_obj.name, signature=measured)
        return summarize_adaptation(adapted.adaptation, adapted.measured.archs)

    def remove_device(self, name: str) -> None:
        """Delete the device, its measurements and its artifacts (:meth:`Store.delete_device`). Adapted models are
        keyed by measurements, not names, so nothing cached answers for the removed name: it is looked up in the
        store on every request."""
        with self._lock:
            self.store.delete_device(name)

    def device_measurements(self, name: str, space: str) -> MeasuredArchs:
        """The device's measurements in ``space`` as the models see them (one latency per arch, validated);
        ``NotFoundError`` for an unknown device or one with no measurements there."""
        space_obj = get_space(space)
        latencies = self._device_latencies(name, space_obj.name)
        if not latencies:
            self.store.get_device(name)  # NotFoundError naming an unknown device
            raise NotFoundError(f"device {name!r} has no measurements in space {space_obj.name!r}; register it there")
        check_enough_to_explain(name, space_obj.name, len(latencies))
        return measurements_from_mapping(space_obj, latencies, where=f"device {name}")

    def _device_latencies(self, name: str, space: str) -> dict[str, float]:
        """One latency per arch: the geometric mean over sources (registered, contributed, measured here); a
        single measurement is returned exactly as stored."""
        values: dict[str, list[float]] = {}
        for m in self.store.measurements(name, space):
            values.setdefault(m.arch, []).append(float(m.latency_ms))
        return {arch: v[0] if len(v) == 1 else float(np.exp(np.mean(np.log(v)))) for arch, v in values.items()}

    # ---- prediction ---------------------------------------------------------------------------------------
    def _features(self, space: SearchSpace, cache: _SpaceCache, archs: Sequence[str]) -> FeatureMatrix:
        return space.model_features(list(archs))

    def _adapt(self, space: SearchSpace, measured: MeasuredArchs) -> DeviceAdaptation:
        cache = self._space(space.name)
        features = self._features(space, cache, measured.archs)
        return cache.bundle.model.adapt(features, np.asarray(measured.latency_ms))

    def adapted(self, space: str, *, device: str | None = None,
                signature: Mapping[str, float] | MeasuredArchs | None = None) -> AdaptedDevice:
        """The space's built-in model adapted to ``device``'s measurements (read from the store now) or to
        ``signature``; one per distinct set of measurements, kept in an LRU of ``MAX_CACHED_ADAPTATIONS``."""
        space_obj = get_space(space)
        if (device is None) == (signature is None):
            raise InvalidInputError("give exactly one of device (a registered name) or signature (measurements)")
        if device is not None:
            measured = self.device_measurements(device, space_obj.name)
        else:
            measured = signature if isinstance(signature, MeasuredArchs) else measurements_from_mapping(
                space_obj, signature or {}, where="signature")
        key = f"{space_obj.name}:{measurement_digest(space_obj.name, measured)}"
        with self._lock:
            hit = self._adapted.get(key)
            if hit is None:
                ordered = in_canonical_order(measured)  # one adaptation per set of measurements, in any order given
                hit = AdaptedDevice(space_obj.name, key, ordered, self._adapt(space_obj, ordered))
                self._adapted[key] = hit
                while len(self._adapted) > MAX_CACHED_ADAPTATIONS:
                    self._adapted.popitem(last=False)
            self._adapted.move_to_end(key)
            return hit

    def predict(self, space: str, archs: Sequence[str], *, device: str | None = None,
                signature: Mapping[str, float] | MeasuredArchs | None = None) -> np.ndarray:
        """Latency in ms of each arch (canonicalized and validated), in order, on ``device`` (registered name)
        or on the device described by ``signature`` (arch → measured latency_ms, at least 3)."""
        space_obj = get_space(space)
        if isinstance(archs, str):
            raise InvalidInputError("archs must be a sequence of architecture ids, not one string")
        if len(archs) == 0:
            return np.zeros(0)
        cache = self._space(space_obj.name)
        adapted = self.adapted(space_obj.name, device=device, signature=signature)
        rows = self._rows(space_obj, cache, archs)
        if rows is not None:
            return self.adapted_table(adapted)[rows]
        canonical = [space_obj.canonical(a) for a in archs]
        return cache.bundle.model.predict(self._features(space_obj, cache, canonical), adapted.adaptation)

    def predict_with_uncertainty(self, space: str, archs: Sequence[str], *, device: str | None = None,
                                 signature: Mapping[str, float] | MeasuredArchs | None = None
                                 ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`predict` and the standard deviation of each predicted log latency (``FailedPreconditionError``
        when the space's model gives no uncertainty)."""
        space_obj = get_space(space)
        if isinstance(archs, str):
            raise InvalidInputError("archs must be a sequence of architecture ids, not one string")
        cache = self._space(space_obj.name)
        adapted = self.adapted(space_obj.name, device=device, signature=signature)
        if len(archs) == 0:
            return np.zeros(0), np.zeros(0)
        rows = self._rows(space_obj, cache, archs)
        if rows is not None:
            return self.adapted_table(adapted)[rows], self.adapted_log_std_table(adapted)[rows]
        canonical = [space_obj.canonical(a) for a in archs]
        latency, std_log = cache.bundle.model.predict_with_uncertainty(self._features(space_obj, cache, canonical),
                                                                       adapted.adaptation)
        return np.asarray(latency, dtype=np.float64), np.asarray(std_log, dtype=np.float64)

    def predict_networks(self, space: str, networks: Sequence[Network], *, device: str | None = None,
                         signature: Mapping[str, float] | MeasuredArchs | None = None) -> NetworkPrediction:
        """Latency in ms of arbitrary networks (from ONNX files, layer tables, torch modules) on a device of
        ``space``, and the estimator that gave it: the built-in model where the space's cost-model features come
        from the IR alone (``space.accepts_networks``), else ``macs_loglinear``, a power law of MACs fitted to the
        device's measurements in the space (:mod:`nas_latency.macs_power_law`)."""
        space_obj = get_space(space)
        for network in networks:
            check_has_work(network)
        cache = self._space(space_obj.name)
        adapted = self.adapted(space_obj.name, device=device, signature=signature)
        if space_obj.accepts_networks:
            features = space_obj.network_model_features(list(networks))
            latency = cache.bundle.model.predict(features, adapted.adaptation)
            return NetworkPrediction(np.asarray(latency, dtype=np.float64), f"builtin:{cache.bundle.model_spec}")
        with self._lock:
            if adapted.macs_law is None:
                adapted.macs_law = fit_macs_power_law(space_obj, adapted.measured)
            law = adapted.macs_law
        return NetworkPrediction(law.predict(networks), MACS_MODEL)

    def _rows(self, space: SearchSpace, cache: _SpaceCache, archs: Sequence[str]) -> np.ndarray | None:
        """Row indices into the space's measured archs when every requested arch is one of them (the fast
        path: NAS-Bench-201's whole space), else None. Unknown strings raise through ``canonical``."""
        if cache.index is None:
            measured = space.measured_archs()
            cache.index = {arch: i for i, arch in enumerate(measured)}
        index = cache.index
        try:
            return np.fromiter((index[a] for a in archs), dtype=np.int64, count=len(archs))
        except KeyError:
            for arch in archs:  # say exactly which one is malformed, if any
                space.canonical(arch)
            return None

    def _measured_features(self, space: SearchSpace, cache: _SpaceCache) -> FeatureMatrix:
        if cache.features is None:
            cache.features = space.model_features(space.measured_archs())
        return cache.features

    def adapted_table(self, adapted: AdaptedDevice) -> np.ndarray:
        """Predicted latency (ms) of every one of the space's measured archs (computed once per adapted model)."""
        if adapted.table is None:
            space = get_space(adapted.space)
            cache = self._space(space.name)
            with self._lock:
                if adapted.table is None:
                    adapted.table = np.asarray(
                        cache.bundle.model.predict(self._measured_features(space, cache), adapted.adaptation),
                        dtype=np.float64)
        return adapted.table

    def adapted_log_std_table(self, adapted: AdaptedDevice) -> np.ndarray:
        """The standard deviation of the predicted log latency of every measured arch (computed once);
        ``FailedPreconditionError`` when the space's model gives no uncertainty."""
        if adapted.log_std_table is None:
            space = get_space(adapted.space)
            cache = self._space(space.name)
            with self._lock:
                if adapted.log_std_table is None:
                    latency, std_log = cache.bundle.model.predict_with_uncertainty(
                        self._measured_features(space, cache), adapted.adaptation)
                    if adapted.table is None:  # the same call predicted it: keep it rather than predict again
                        adapted.table = np.asarray(latency, dtype=np.float64)
                    adapted.log_std_table = np.asarray(std_log, dtype=np.float64)
        return adapted.log_std_table
