"""The built-in model of each space: a cross-device cost model trained on every device we have data for
(the bundled measurements plus devices in the store with enough measurements), and the signature set new
devices are asked to measure.

A bundle is one artifact (``kind="builtin_bundle"``): the model's own artifact bytes, the ordered signature
set, and the names of the training devices. It lives in the store, so server replicas share it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from nas_latency.data import device_columns, load_table
from nas_latency.errors import InvalidInputError, NotFoundError
from nas_latency.models.artifacts import Artifact, artifact_from_bytes, check_artifact
from nas_latency.models.base import CrossDeviceModel
from search_spaces import SearchSpace, get_space

log = logging.getLogger(__name__)

BUNDLE_KIND = "builtin_bundle"
BUNDLE_NAME = "builtin"
#: the length of the signature order stored with a model: `signature --size K` serves K up to it (a larger K is
#: an error that names the limit; a model onboards from any measured archs, so more measurements need no order)
SIGNATURE_ORDER_LENGTH = 64
#: a device in the store joins training once it has this many measurements in the space
MIN_STORE_MEASUREMENTS = 100

# Which model each space ships, and how its signature set is chosen: decided by leave-device-out
# evaluation (`nas-latency evaluate`), see docs/figures.md. `clamp_speed` changes nothing for a device
# whose speed lies within the training devices' range and keeps the rankings of one outside it
# (`evaluate --scale-held-out F`); `drop_outliers` leaves out a measurement the device's others disagree with
# (`evaluate --spike-held-out F`).
DEFAULT_MODEL_SPECS: dict[str, str] = {
    "nasbench201": "clamp_speed(degenerate_aware(drop_outliers(loo_select(without_costs(blr_evidence),cost_nnls,"
                   "pruned_cost_nnls))))",
    "fbnet": "clamp_speed(drop_outliers(loo_average(without_costs(geo_ensemble(nnls_mix,blr_evidence)),cost_nnls)))",
    "ganesan_mobile": "clamp_speed(drop_outliers(loo_select(without_costs(geo_ensemble(nnls_mix_measured,gp_mix)),"
                      "cost_nnls(bagged=true),significance=0.01)))",
}
#: how each space's signature set is chosen (`nas-latency evaluate --signature-method M`, both with and without
#: `--exclude-same kind`); other spaces use DEFAULT_SIGNATURE_METHOD
SIGNATURE_METHODS: dict[str, str] = {
    "nasbench201": "mutual_information",
    "fbnet": "informative",
    "ganesan_mobile": "mutual_information",
}
DEFAULT_SIGNATURE_METHOD = "mutual_information"


def signature_method_of(space: str) -> str:
    """The signature-selection method ``space`` ships with."""
    return SIGNATURE_METHODS.get(space, DEFAULT_SIGNATURE_METHOD)

ProgressCallback = Callable[[str, int, int], None]


@dataclass(frozen=True)
class TrainingTable:
    """Latencies of the space's measured architectures on the training devices (NaN = not measured)."""

    archs: list[str]
    devices: list[str]
    latency_ms: np.ndarray  # (n_archs, n_devices)


_BUNDLED_TABLES = {"nasbench201": "nb201_latency", "fbnet": "fbnet_latency", "ganesan_mobile": "ganesan_mobile_latency"}


def bundled_training_table(space: SearchSpace) -> TrainingTable:
    """The bundled measurements of ``space`` as an (archs × devices) table over ``space.measured_archs()``."""
    try:
        table_name = _BUNDLED_TABLES[space.name]
    except KeyError:
        raise NotFoundError(f"space {space.name!r} has no bundled latency data to train a built-in model on") from None
    frame = load_table(table_name)
    devices = device_columns(table_name)
    archs = space.measured_archs()
    if space.name == "nasbench201":
        frame = frame.set_index("arch_string")
    elif space.name == "fbnet":  # the space's measured archs are the table's rows in arch_id order
        frame = frame.sort_values("arch_id", kind="stable")
        frame.index = archs
    else:
        frame = frame.set_index("network_name")
    values = frame.loc[archs, devices].to_numpy(dtype=np.float64)
    return TrainingTable(archs, devices, values)


def add_store_devices(table: TrainingTable, columns: dict[str, dict[str, float]]) -> TrainingTable:
    """Append devices (name → {arch: latency_ms}) as extra columns; archs outside the table are ignored."""
    if not columns:
        return table
    index = {arch: i for i, arch in enumerate(table.archs)}
    extra = np.full((len(table.archs), len(columns)), np.nan)
    names = []
    for j, (name, measured) in enumerate(sorted(columns.items())):
        names.append(name)
        for arch, latency in measured.items():
            i = index.get(arch)
            if i is not None:
                extra[i, j] = latency
    return TrainingTable(table.archs, table.devices + names, np.hstack([table.latency_ms, extra]))


def exclude(table: TrainingTable, devices: Sequence[str]) -> TrainingTable:
    """The table without the named devices; an unknown name is an error (a typo must not train on it)."""
    unknown = sorted(set(devices) - set(table.devices))
    if unknown:
        raise NotFoundError(f"cannot exclude unknown training devices {unknown}; devices: {', '.join(table.devices)}")
    keep = [j for j, name in enumerate(table.devices) if name not in set(devices)]
    return TrainingTable(table.archs, [table.devices[j] for j in keep], table.latency_ms[:, keep])


@dataclass
class BuiltinBundle:
    """A trained cross-device model with its signature order and training devices."""

    space: str
    model_spec: str
    model: CrossDeviceModel
    signature_order: list[str]
    training_devices: list[str]

    def signature(self, size: int) -> list[str]:
        if size < 1:
            raise InvalidInputError(f"signature size must be at least 1, got {size}")
        if size > len(self.signature_order):
            raise InvalidInputError(
                f"signature size {size} is larger than the {len(self.signature_order)} archs this model orders"
            )
        return list(self.signature_order[:size])

    def to_artifact(self) -> Artifact:
        model_bytes = self.model.to_artifact().to_bytes()
        return Artifact(
            kind=BUNDLE_KIND,
            params={"space": self.space, "model_spec": self.model_spec},
            feature_schema_hash=self.model.feature_schema_hash_ or "",
            arrays={"model": np.frombuffer(model_bytes, dtype=np.uint8)},
            extra={"signature_order": self.signature_order, "training_devices": self.training_devices},
        )

    @classmethod
    def from_artifact(cls, artifact: Artifact, *, source: str) -> "BuiltinBundle":
        from nas_latency.models import model_from_artifact

        check_artifact(artifact, kind=BUNDLE_KIND, feature_schema_hash=None, source=source)
        inner = artifact_from_bytes(artifact.arrays["model"].tobytes(), source=f"{source} (model)")
        model = model_from_artifact(inner)
        return cls(
            space=str(artifact.params["space"]),
            model_spec=str(artifact.params["model_spec"]),
            model=model,  # type: ignore[arg-type]
            signature_order=list(artifact.extra["signature_order"]),
            training_devices=list(artifact.extra["training_devices"]),
        )


def train_bundle(
    space_name: str,
    *,
    model_spec: str | None = None,
    extra_devices: dict[str, dict[str, float]] | None = None,
    exclude_devices: Sequence[str] = (),
    signature_method: str | None = None,
    progress: ProgressCallback | None = None,
    seed: int = 0,
) -> BuiltinBundle:
    """Train the space's built-in model on the bundled devices plus ``extra_devices`` (from the store), leaving
    out ``exclude_devices`` (to onboard one of them later as if it were new). ``signature_method``: default the
    space's (:func:`signature_method_of`)."""
    from nas_latency.models.specs import build_model
    from nas_latency.signature import select_signature

    def step(label: str, done: int) -> None:
        if progress is not None:
            progress(label, done, 4)

    space = get_space(space_name)
    spec = model_spec or DEFAULT_MODEL_SPECS[space.name]
    step("loading measurements", 0)
    table = exclude(add_store_devices(bundled_training_table(space), extra_devices or {}), exclude_devices)
    step("featurizing", 1)
    features = space.model_features(table.archs)
    step(f"fitting {spec} on {len(table.devices)} devices", 2)
    model = build_model(spec).fit(features, table.latency_ms)
    step("choosing the signature set", 3)
    order = select_signature(
        signature_method or signature_method_of(space.name), table.latency_ms, table.archs, min(SIGNATURE_ORDER_LENGTH, len(table.archs)),
        seed=seed, features=features, degenerate_mask=space.degenerate_mask(table.archs),
    )
    step("done", 4)
    log.info("trained %s for %s on %d devices", spec, space.name, len(table.devices))
    return BuiltinBundle(space.name, spec, model, list(order), list(table.devices))

