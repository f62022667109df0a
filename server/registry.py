"""The server's model registry: adapted models keyed by device signature vectors, over the embedded predictor.

A device (registered by name, or described inline by its signature) resolves to its **signature vector**: its
measured architectures and latencies in a space, one latency per architecture (the geometric mean over sources,
exactly as :class:`~nas_latency.predictor.Predictor` combines them). The registry keys adapted models by a digest
of that vector, so devices with the same signature share one adapted model (and one table of predictions); a
response carries the key and names the **nearest known devices** (bundled training devices and registered ones,
by RMS log-latency ratio over the space's signature architectures).

Every latency comes from :meth:`Predictor.predict` with the device's signature vector, so a server answers
exactly what the embedded predictor answers for the same store. For a space's measured architectures (all of
NAS-Bench-201) the registry keeps the adapted model's predictions over all of them and answers a batch with one
index lookup per arch and one numpy take, with no per-request model work.

Freshness across replicas: a device's signature vector is re-read from the store at most ``device_ttl_s`` after
it was last read (writes through this server take effect at once), and a background thread checks every
``refresh_s`` for a newer built-in model version in the store (another replica's ``TrainModel``) and every
``devices_refresh_s`` for new or changed devices (for the nearest-device lists only; predictions follow the
``device_ttl_s`` rule).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from nas_latency.builtin_models import BUNDLE_NAME, BuiltinBundle, bundled_training_table
from nas_latency.client import NearestDevice
from nas_latency.device_info import DeviceInfo
from nas_latency.errors import (
    DeadlineExceededError,
    FailedPreconditionError,
    InvalidInputError,
    NasLatencyError,
    NotFoundError,
)
from nas_latency.ir import Network
from nas_latency.measurements import MIN_MEASUREMENTS, MeasuredArchs, validate_measurements
from nas_latency.predictor import CONTRIBUTE_SOURCE, AdaptedDevice, Predictor, measurement_digest
from nas_latency.store import AddResult, MeasurementRow, Store, open_store
from search_spaces import SearchSpace, get_space, space_names

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Prediction:
    """What the registry answers: latencies in request order and where they come from."""

    latency_ms: np.ndarray
    latency_log_std: np.ndarray | None
    model: str
    signature_key: str
    nearest_devices: tuple[NearestDevice, ...]


@dataclass
class _Adapted:
    """What the server keeps beside one of the predictor's adapted models (:class:`AdaptedDevice`, which holds
    the adaptation and its prediction tables): the devices sharing it, its reference vector and nearest-device
    list."""

    adapted: AdaptedDevice
    reference_log: np.ndarray  # ln predictions at the space's reference (signature) archs
    devices: set[str] = field(default_factory=set)
    nearest: tuple[int, tuple[NearestDevice, ...]] | None = None  # (known-devices version, sorted list)

    @property
    def key(self) -> str:
        return self.adapted.key

    @property
    def space(self) -> str:
        return self.adapted.space

    @property
    def measured(self) -> MeasuredArchs:
        return self.adapted.measured


@dataclass(frozen=True)
class _Known:
    """A snapshot of the devices nearest-device lists are drawn from."""

    version: int
    names: tuple[str, ...]
    kinds: tuple[str, ...]
    log_latency: np.ndarray  # (n_devices, n_reference_archs), NaN = unknown


@dataclass
class _SpaceState:
    """A loaded space: its model, the index of its measured archs, and its known devices."""

    space: SearchSpace
    predictor: Predictor
    bundle: BuiltinBundle
    model: str
    version: int
    measured_archs: list[str]
    index: dict[str, int]
    reference_archs: list[str]
    bundled_names: tuple[str, ...]
    bundled_log: np.ndarray
    known: _Known
    registered_vectors: dict[str, np.ndarray] = field(default_factory=dict)

    def rows(self, archs: Sequence[str]) -> np.ndarray | None:
        """Indices into the measured archs when every arch is one of them (the fast path), else ``None``."""
        index = self.index
        try:
            if len(archs) == 1:
                return np.array([index[archs[0]]], dtype=np.int64)
            return np.fromiter(map(index.__getitem__, archs), dtype=np.int64, count=len(archs))
        except KeyError:
            return None


class ModelRegistry:
    """Adapted models keyed by signature vector, over one :class:`Predictor` and its store. Thread-safe.

    ``spaces`` are loaded by :meth:`load` (the server's health turns SERVING after it); others load on first use.
    """

    def __init__(self, predictor: Predictor | None = None, *, store_url: str | None = None,
                 spaces: Sequence[str] | None = None, device_ttl_s: float = 1.0, refresh_s: float = 5.0,
                 devices_refresh_s: float = 60.0, nearest_count: int = 3, max_adapted: int = 1024) -> None:
        if predictor is not None and store_url is not None:
            raise InvalidInputError("give either a predictor or a store_url, not both")
        self._owns_store = predictor is None
        self.store: Store = predictor.store if predictor is not None else open_store(store_url)
        self._predictor = predictor if predictor is not None else Predictor(store=self.store)
        self.spaces = tuple(get_space(s).name for s in spaces) if spaces else tuple(space_names())
        self.device_ttl_s = float(device_ttl_s)
        self.refresh_s = float(refresh_s)
        self.devices_refresh_s = float(devices_refresh_s)
        self._known_refreshed_at = time.monotonic()
        self.nearest_count = int(nearest_count)
        self.max_adapted = int(max_adapted)
        self._lock = threading.RLock()
        self._states: dict[str, _SpaceState] = {}
        self._adapted: OrderedDict[str, _Adapted] = OrderedDict()
        self._devices: dict[tuple[str, str], tuple[str, float]] = {}  # (space, name) -> (key, read at)
        self._inline: OrderedDict[tuple[Any, ...], str] = OrderedDict()  # raw inline signature -> key
        self._known_version = 0
        self._loaded = threading.Event()
        self.load_error: BaseException | None = None
        self._closed = threading.Event()
        self._refresher: threading.Thread | None = None

    # ---- lifecycle -------------------------------------------------------------------------------------------------
    @property
    def predictor(self) -> Predictor:
        return self._predictor

    @property
    def loaded(self) -> bool:
        return self._loaded.is_set()

    def load(self) -> None:
        """Load (or train, on a fresh store) the built-in model of every configured space and warm its tables."""
        try:
            for name in self.spaces:
                start = time.perf_counter()
                self._state(name)
                log.info("loaded space %s", name, extra={"event": "space_loaded", "space": name,
                                                         "wall_s": round(time.perf_counter() - start, 3)})
        except BaseException as exc:
            self.load_error = exc
            raise
        finally:
            self._loaded.set()

    def start(self, on_loaded: Callable[[bool], None] | None = None) -> None:
        """Load in a background thread, call ``on_loaded(ok)``, then keep refreshing every ``refresh_s``."""

        def run() -> None:
            ok = True
            try:
                self.load()
            except BaseException:
                ok = False
                log.exception("loading the models failed", extra={"event": "load_failed"})
            if on_loaded is not None:
                on_loaded(ok)
            while not self._closed.wait(self.refresh_s):
                try:
                    self.refresh()
                except Exception:
                    log.exception("refreshing models and devices failed", extra={"event": "refresh_failed"})

        self._refresher = threading.Thread(target=run, name="registry", daemon=True)
        self._refresher.start()

    def wait_loaded(self, timeout_s: float | None) -> None:
        """Block until :meth:`load` finished (:class:`DeadlineExceededError` after ``timeout_s``)."""
        if self._loaded.is_set():
            return
        if not self._loaded.wait(None if timeout_s is None else max(timeout_s, 0.0)):
            raise DeadlineExceededError("the server is still loading its models", reason="MODELS_LOADING")

    def close(self) -> None:
        self._closed.set()
        if self._refresher is not None and self._refresher is not threading.current_thread():
            self._refresher.join(timeout=5)
        if self._owns_store:
            self._predictor.close()
            self.store.close()

    # ---- spaces ----------------------------------------------------------------------------------------------------
    def _state(self, space: str) -> _SpaceState:
        state = self._states.get(space)
        if state is not None:
            return state
        space_obj = get_space(space)  # NotFoundError for an unknown space
        with self._lock:
            state = self._states.get(space_obj.name)
            if state is None:
                state = self._load_space(self._predictor, space_obj)
                self._states[space_obj.name] = state
                self._refresh_known(state)
            return state

    def _latest_version(self, space: str) -> int:
        versions = [a.version for a in self.store.list_artifacts(space, latest_only=True) if a.name == BUNDLE_NAME]
        return versions[0] if versions else 0

    def _load_space(self, predictor: Predictor, space: SearchSpace) -> _SpaceState:
        bundle = predictor.bundle(space.name)
        version = self._latest_version(space.name)
        measured = list(space.measured_archs())
        reference = list(bundle.signature_order)
        try:
            table = bundled_training_table(space)
            position = {arch: i for i, arch in enumerate(table.archs)}
            rows = [position.get(arch) for arch in reference]
            bundled_log = np.full((len(table.devices), len(reference)), np.nan)
            for j, row in enumerate(rows):
                if row is not None:
                    with np.errstate(divide="ignore", invalid="ignore"):
                        bundled_log[:, j] = np.log(table.latency_ms[row, :])
            bundled_names = tuple(table.devices)
        except NotFoundError:
            bundled_names, bundled_log = (), np.zeros((0, len(reference)))
        state = _SpaceState(
            space=space, predictor=predictor, bundle=bundle, model=f"builtin:{bundle.model_spec}", version=version,
            measured_archs=measured, index={arch: i for i, arch in enumerate(measured)}, reference_archs=reference,
            bundled_names=bundled_names, bundled_log=bundled_log,
            known=_Known(0, bundled_names, ("bundled",) * len(bundled_names), bundled_log),
        )
        if bundled_names and reference:  # warm the predictor's feature cache with a bundled device's signature
            latencies = np.exp(bundled_log[0])
            ok = np.isfinite(latencies)
            if ok.sum() >= MIN_MEASUREMENTS:
                warm = MeasuredArchs(space.name, tuple(a for a, keep in zip(reference, ok) if keep),
                                     tuple(float(v) for v in latencies[ok]))
                predictor.predict(space.name, measured[:1], signature=warm)
        return state

    def space_state(self, space: str) -> tuple[bool, str]:
        """``(loaded, model)`` of a space, without loading it."""
        state = self._states.get(space)
        return (True, state.model) if state is not None else (False, "")

    def refresh(self) -> None:
        """Pick up another replica's newer built-in models; every ``devices_refresh_s`` also re-read every known
        device (for the nearest-device lists: other replicas' registrations and contributions)."""
        changed = [name for name, state in list(self._states.items()) if self._latest_version(name) != state.version]
        if changed:
            log.info("newer built-in models in the store; reloading", extra={"event": "models_changed",
                                                                              "spaces": changed})
            fresh = Predictor(store=self.store)
            states = {name: self._load_space(fresh, get_space(name)) for name in self._states}
            with self._lock:
                self._predictor = fresh
                self._states = states
                self._forget(lambda key: True)
                for state in states.values():
                    self._refresh_known(state)
            return
        if time.monotonic() - self._known_refreshed_at >= self.devices_refresh_s:
            self._known_refreshed_at = time.monotonic()
            for state in list(self._states.values()):
                with self._lock:
                    self._refresh_known(state, force=True)

    # ---- device resolution ---------------------------------------------------------------------------------------
    def _forget(self, drop: Callable[[str], bool]) -> None:
        """Drop adapted models whose key ``drop`` selects (under the lock)."""
        for key in [k for k in self._adapted if drop(k)]:
            del self._adapted[key]
        self._devices = {k: v for k, v in self._devices.items() if v[0] in self._adapted}
        self._inline = OrderedDict((k, v) for k, v in self._inline.items() if v in self._adapted)

    def _read_device(self, state: _SpaceState, name: str) -> MeasuredArchs:
        """The device's signature vector, exactly as the embedded ``Predictor`` reads it."""
        return state.predictor.device_measurements(name, state.space.name)

    def _adapted_for(self, state: _SpaceState, measured: MeasuredArchs) -> _Adapted:
        key = f"{state.space.name}:{measurement_digest(state.space.name, measured)}"
        entry = self._adapted.get(key)
        if entry is not None:
            return entry
        with self._lock:
            entry = self._adapted.get(key)
            if entry is None:
                predictor = state.predictor
                adapted = predictor.adapted(state.space.name, signature=measured)
                table = predictor.adapted_table(adapted)  # computed here, once, not on the first request
                rows = state.rows(state.reference_archs) if state.reference_archs else None
                if rows is not None:
                    reference = table[rows]
                elif state.reference_archs:
                    reference = predictor.predict(state.space.name, state.reference_archs, signature=measured)
                else:
                    reference = np.zeros(0)
                entry = _Adapted(adapted, np.log(reference))
                self._adapted[key] = entry
                while len(self._adapted) > self.max_adapted:
                    self._adapted.popitem(last=False)
            return entry

    def _device_entry(self, state: _SpaceState, name: str, *, fresh: bool = False) -> _Adapted:
        slot = (state.space.name, name)
        hit = self._devices.get(slot)
        now = time.monotonic()
        if hit is not None and not fresh and now - hit[1] < self.device_ttl_s:
            entry = self._adapted.get(hit[0])
            if entry is not None:
                return entry
        measured = self._read_device(state, name)
        with self._lock:
            entry = self._adapted_for(state, measured)
            self._adapted.move_to_end(entry.key)  # least recently resolved adapted models are evicted first
            if hit is not None and hit[0] != entry.key and hit[0] in self._adapted:
                self._adapted[hit[0]].devices.discard(name)
            entry.devices.add(name)
            self._devices[slot] = (entry.key, now)
        return entry

    def _inline_entry(self, state: _SpaceState, archs: Sequence[str], latency_ms: Sequence[float]) -> _Adapted:
        raw = (state.space.name, tuple(archs), tuple(latency_ms))
        key = self._inline.get(raw)
        if key is not None:
            entry = self._adapted.get(key)
            if entry is not None:
                return entry
        if len(archs) != len(latency_ms):
            raise InvalidInputError(
                f"signature: {len(archs)} archs but {len(latency_ms)} latencies; give one latency_ms per arch"
            )
        rows = [(i, arch, value) for i, (arch, value) in enumerate(zip(archs, latency_ms), start=1)]
        measured = validate_measurements(state.space, rows, where="signature")
        with self._lock:
            entry = self._adapted_for(state, measured)
            self._adapted.move_to_end(entry.key)
            self._inline[raw] = entry.key
            while len(self._inline) > self.max_adapted:
                self._inline.popitem(last=False)
        return entry

    def _entry(self, state: _SpaceState, device: str | None,
               signature: tuple[Sequence[str], Sequence[float]] | None) -> _Adapted:
        if (device is None) == (signature is None):
            raise InvalidInputError("give exactly one of device (a registered name) or signature (measurements)")
        if device is not None:
            return self._device_entry(state, device)
        assert signature is not None
        return self._inline_entry(state, *signature)

    # ---- nearest devices -----------------------------------------------------------------------------------------
    def _refresh_known(self, state: _SpaceState, *, force: bool = False, names: Sequence[str] = ()) -> None:
        """Rebuild the space's known-device snapshot (under the lock). Registered devices' vectors are kept unless
        ``force`` (all) or listed in ``names``."""
        current = self.store.devices_with_measurements(state.space.name, MIN_MEASUREMENTS)
        vectors: dict[str, np.ndarray] = {}
        for name in current:
            vector = state.registered_vectors.get(name)
            if vector is None or force or name in names:
                try:
                    vector = self._device_entry(state, name, fresh=force or name in names).reference_log
                except NasLatencyError as exc:  # e.g. removed meanwhile, or measurements the model rejects
                    log.warning("device %s left out of nearest-device lists: %s", name, exc)
                    continue
            vectors[name] = vector
        state.registered_vectors = vectors
        self._known_version += 1
        registered = list(vectors)
        matrix = np.vstack([state.bundled_log] + [vectors[n][None, :] for n in registered]) if registered \
            else state.bundled_log
        state.known = _Known(self._known_version, state.bundled_names + tuple(registered),
                             ("bundled",) * len(state.bundled_names) + ("registered",) * len(registered), matrix)

    def _nearest(self, state: _SpaceState, entry: _Adapted, exclude: str | None) -> tuple[NearestDevice, ...]:
        known = state.known
        cached = entry.nearest
        if cached is None or cached[0] != known.version:
            if len(known.names) == 0 or entry.reference_log.size == 0:
                ranked: tuple[NearestDevice, ...] = ()
            else:
                diff = known.log_latency - entry.reference_log[None, :]
                valid = np.isfinite(diff)
                counts = valid.sum(axis=1)
                sq = np.where(valid, diff, 0.0) ** 2
                with np.errstate(invalid="ignore", divide="ignore"):
                    rms = np.sqrt(sq.sum(axis=1) / counts)
                order = [i for i in np.argsort(rms, kind="stable") if counts[i] > 0]
                ranked = tuple(NearestDevice(known.names[i], known.kinds[i], float(rms[i]))  # type: ignore[arg-type]
                               for i in order[: self.nearest_count + 1])
            cached = (known.version, ranked)
            entry.nearest = cached
        ranked = cached[1]
        if exclude is not None:
            ranked = tuple(d for d in ranked if not (d.kind == "registered" and d.name == exclude))
        return ranked[: self.nearest_count]

    # ---- prediction ------------------------------------------------------------------------------------------------
    def _uncertainty(self, state: _SpaceState, entry: _Adapted, archs: Sequence[str],
                     rows: np.ndarray | None) -> np.ndarray | None:
        """The standard deviation of each predicted log latency, or None when the model gives none."""
        try:
            if rows is not None:
                return state.predictor.adapted_log_std_table(entry.adapted)[rows]
            return state.predictor.predict_with_uncertainty(state.space.name, list(archs), signature=entry.measured)[1]
        except NasLatencyError as exc:  # the model gives no uncertainty
            log.debug("no uncertainty from %s: %s", state.model, exc)
            return None

    def predict_archs(self, space: str, archs: Sequence[str], *, device: str | None = None,
                      signature: tuple[Sequence[str], Sequence[float]] | None = None,
                      include_uncertainty: bool = False) -> Prediction:
        """Latencies (ms) of architecture ids of ``space`` on a registered device or an inline signature
        (``(archs, latency_ms)``)."""
        state = self._state(space)
        entry = self._entry(state, device, signature)
        nearest = self._nearest(state, entry, device)
        if len(archs) == 0:
            return Prediction(np.zeros(0), None, state.model, entry.key, nearest)
        rows = state.rows(archs)
        if rows is not None:
            latency = state.predictor.adapted_table(entry.adapted)[rows]
        else:  # not all measured archs: canonicalize, validate and featurize through the predictor
            latency = state.predictor.predict(state.space.name, list(archs), signature=entry.measured)
        std = self._uncertainty(state, entry, archs, rows) if include_uncertainty else None
        return Prediction(latency, std, state.model, entry.key, nearest)

    def predict_networks(self, space: str, networks: Sequence[Network], *, device: str | None = None,
                         signature: tuple[Sequence[str], Sequence[float]] | None = None) -> Prediction:
        """Latencies (ms) of arbitrary networks, by :meth:`Predictor.predict_networks`: the space's built-in model
        where its features come from the IR (``space.accepts_networks``), elsewhere ``macs_loglinear``, a power
        law of MACs fitted to the device's measurements in ``space`` (a coarse baseline, named in the response)."""
        state = self._state(space)
        entry = self._entry(state, device, signature)
        nearest = self._nearest(state, entry, device)
        result = state.predictor.predict_networks(state.space.name, networks, signature=entry.measured)
        return Prediction(result.latency_ms, None, result.model, entry.key, nearest)

    def signature_set(self, space: str, size: int) -> list[str]:
        state = self._state(space)
        return state.predictor.signature_set(state.space.name, size)

    # ---- writes ----------------------------------------------------------------------------------------------------
    def register_device(self, name: str, space: str, measured: MeasuredArchs, *,
                        description: str | None = None) -> DeviceInfo:
        state = self._state(space)
        info = state.predictor.register_device(name, state.space.name, measured, description=description)
        with self._lock:
            self._device_entry(state, name, fresh=True)
            self._refresh_known(state, names=[name])
        return info

    def contribute(self, name: str, space: str, rows: Sequence[MeasurementRow], *,
                   request_id: str | None, refit: bool = True) -> tuple[AddResult, DeviceInfo, bool]:
        """Commit contributed measurements (idempotent under ``request_id``), then refit the device's model."""
        space_name = get_space(space).name
        result = self.store.add_measurements(name, space_name, rows, source=CONTRIBUTE_SOURCE, request_id=request_id)
        refitted = False
        if refit and self._loaded.is_set():
            state = self._state(space_name)
            try:
                with self._lock:
                    self._device_entry(state, name, fresh=True)
                    self._refresh_known(state, names=[name])
                refitted = True
            except (InvalidInputError, FailedPreconditionError) as exc:  # e.g. fewer than 3 measurements so far
                log.info("device %s not refitted: %s", name, exc)
        return result, self._predictor.device(name, space_name), refitted

    def remove_device(self, name: str) -> None:
        self._predictor.remove_device(name)
        with self._lock:
            for (space, device), (key, _) in list(self._devices.items()):
                if device == name:
                    del self._devices[(space, device)]
                    if key in self._adapted:
                        self._adapted[key].devices.discard(name)
            for state in self._states.values():
                if name in state.registered_vectors:
                    self._refresh_known(state)

    def train(self, space: str, *, model_spec: str | None = None, exclude_devices: Sequence[str] = ()) -> BuiltinBundle:
        """Retrain the space's built-in model (stored as a new version that every replica picks up)."""
        space_name = get_space(space).name
        with self._lock:
            bundle = self._predictor.train(space_name, model_spec=model_spec, exclude_devices=list(exclude_devices))
            self._forget(lambda key: key.startswith(f"{space_name}:"))
            state = self._load_space(self._predictor, get_space(space_name))
            self._states[space_name] = state
            self._refresh_known(state, force=True)
        return bundle

    # ---- listings ----------------------------------------------------------------------------------------------------
    def adapted_models(self, space: str | None = None) -> list[tuple[str, str, tuple[str, ...], int]]:
        """``(space, key, device names, n_measurements)`` of the adapted models held now."""
        with self._lock:
            entries = list(self._adapted.values())
        return sorted((e.space, e.key, tuple(sorted(e.devices)), len(e.measured.archs))
                      for e in entries if space is None or e.space == space)
