"""``GeometricEnsemble``: the (weighted) geometric mean of several cross-device models' predictions.

Every member is fitted on the same features and latency table and adapted on the same measurements; the
members are saved inside the ensemble's one artifact (their arrays prefixed ``members.<i>.``) and their
adaptations inside its one :class:`DeviceAdaptation`.
"""

from __future__ import annotations

import hashlib
from typing import Any, Mapping, Sequence

import numpy as np

from nas_latency.errors import FailedPreconditionError, InvalidInputError
from nas_latency.ir import FeatureMatrix
from nas_latency.models.artifacts import Artifact, check_artifact
from nas_latency.models.base import CrossDeviceModel, DeviceAdaptation
from nas_latency.models.linalg import (
    as_float_tuple,
    clone,
    nest_adaptation,
    nest_artifact,
    unnest_adaptation,
    unnest_artifact,
)


class GeometricEnsemble(CrossDeviceModel):
    """``exp(Σ_i v_i log p_i / Σ_i v_i)`` over member predictions ``p_i``; equal weights by default."""

    kind = "geo_ensemble"

    def __init__(self, *, members: Sequence[CrossDeviceModel], weights: Sequence[float] | None = None) -> None:
        self.members = members
        self.weights = weights

    def _checked_weights(self) -> np.ndarray:
        if self.weights is None:
            return np.full(len(self.members), 1.0 / len(self.members))
        weights = np.asarray(as_float_tuple(self.weights, what="weights", length=len(self.members)))
        if not np.all(np.isfinite(weights)) or (weights < 0).any() or weights.sum() <= 0:
            raise InvalidInputError(f"weights must be non-negative with a positive sum, got {list(self.weights)}")
        return weights / weights.sum()

    def fit(self, features: FeatureMatrix, latency_ms: np.ndarray) -> "GeometricEnsemble":
        if isinstance(self.members, (str, bytes)) or not isinstance(self.members, Sequence) or not self.members:
            raise InvalidInputError("members must be a non-empty sequence of cross-device models")
        for i, member in enumerate(self.members):
            if not isinstance(member, CrossDeviceModel):
                raise InvalidInputError(f"members[{i}] must be a CrossDeviceModel, got {type(member).__name__}")
        self.weights_ = self._checked_weights()
        self._validate_table(features, latency_ms)
        self.members_: list[CrossDeviceModel] = [
            clone(member).fit(features, latency_ms) for member in self.members  # type: ignore[misc]
        ]
        self._remember_schema(features)
        return self

    @property
    def fingerprint_(self) -> str:
        parts = "|".join(str(getattr(m, "fingerprint_", "")) for m in self.members_)
        return hashlib.sha256(parts.encode()).hexdigest()[:16]

    def _adapt(self, X: np.ndarray, latency_ms: np.ndarray) -> DeviceAdaptation:
        return self._adaptation([member._adapt(X, latency_ms) for member in self.members_], len(latency_ms))

    def _adaptation(self, member_adaptations: Sequence[DeviceAdaptation], n_measurements: int) -> DeviceAdaptation:
        """The ensemble's adaptation made of its members' (in member order)."""
        arrays: dict[str, np.ndarray] = {}
        infos: list[dict[str, Any]] = []
        for i, member_adaptation in enumerate(member_adaptations):
            member_arrays, member_info = nest_adaptation(f"members.{i}", member_adaptation)
            arrays.update(member_arrays)
            infos.append(member_info)
        return DeviceAdaptation(
            model_kind=self.kind,
            feature_schema_hash=self.feature_schema_hash_ or "",
            n_measurements=n_measurements,
            arrays=arrays,
            info={"members": infos},
        )

    def _members_adapted_and_held_out(self, X: np.ndarray, latency_ms: np.ndarray,
                                      fold: np.ndarray) -> tuple[list[DeviceAdaptation], list[np.ndarray]]:
        """Each member's adaptation and its held-out log predictions for ``fold``."""
        pairs = [member._adapt_and_held_out(X, latency_ms, fold) for member in self.members_]
        return [adaptation for adaptation, _ in pairs], [held_out for _, held_out in pairs]

    def _held_out_log_predictions(self, X: np.ndarray, latency_ms: np.ndarray, fold: np.ndarray) -> np.ndarray:
        """Each member adapts on its own, so the ensemble's held-out log prediction is the weighted sum of the
        members' (each by its own, possibly closed-form, cross-validation)."""
        return self._weighted_held_out([member._held_out_log_predictions(X, latency_ms, fold)
                                        for member in self.members_])

    def _adapt_and_held_out(self, X: np.ndarray, latency_ms: np.ndarray,
                            fold: np.ndarray) -> tuple[DeviceAdaptation, np.ndarray]:
        adaptations, held_out = self._members_adapted_and_held_out(X, latency_ms, fold)
        return self._adaptation(adaptations, len(latency_ms)), self._weighted_held_out(held_out)

    def _weighted_held_out(self, members_held_out: Sequence[np.ndarray]) -> np.ndarray:
        """The ensemble's held-out log predictions from its members' (in member order), by its fixed weights."""
        return sum(w * h for w, h in zip(self.weights_, members_held_out))  # type: ignore[return-value]

    def device_weights(self, adaptation: DeviceAdaptation) -> np.ndarray:
        """The members' weights for the device of ``adaptation``: the ensemble's fixed weights (subclasses may
        choose them per device)."""
        return self.weights_

    def member_predictions(self, X: np.ndarray, adaptation: DeviceAdaptation,
                           members: Sequence[int] | None = None) -> np.ndarray:
        """``(n, len(members))``: each listed member's prediction in ms (default: every member)."""
        infos = adaptation.info["members"]
        if len(infos) != len(self.members_):
            raise InvalidInputError(f"adaptation has {len(infos)} members, the ensemble {len(self.members_)}")
        chosen = range(len(self.members_)) if members is None else members
        return np.column_stack([
            self.members_[i]._predict(X, unnest_adaptation(f"members.{i}", adaptation, infos[i])) for i in chosen
        ])

    def _predict(self, X: np.ndarray, adaptation: DeviceAdaptation) -> np.ndarray:
        weights = self.device_weights(adaptation)
        used = np.flatnonzero(weights > 0)
        return np.exp(np.log(self.member_predictions(X, adaptation, used)) @ weights[used])

    def _predict_log_std(self, X: np.ndarray, adaptation: DeviceAdaptation) -> np.ndarray:
        """The members' log predictions treated as a mixture with the device's weights: the weighted mean of the
        members' predictive variances plus the weighted spread of their log predictions around the ensemble's
        (the law of total variance). A member without an uncertainty of its own counts with the weighted mean
        variance of the members that have one; ``FailedPreconditionError`` when none has."""
        infos = adaptation.info["members"]
        all_weights = self.device_weights(adaptation)
        used = np.flatnonzero(all_weights > 0)
        weights = all_weights[used]
        log_predictions = np.log(self.member_predictions(X, adaptation, used))
        variances: list[np.ndarray | None] = []
        for i in used:
            try:
                std = self.members_[i]._predict_log_std(X, unnest_adaptation(f"members.{i}", adaptation, infos[i]))
                variances.append(std**2)
            except FailedPreconditionError:
                variances.append(None)
        known = [k for k, v in enumerate(variances) if v is not None]
        if not known:
            raise FailedPreconditionError(f"no member of the {self.kind!r} model gives an uncertainty")
        share = weights[known] / weights[known].sum()
        fallback = sum(s * variances[k] for s, k in zip(share, known))  # type: ignore[operator]
        within = sum(w * (v if v is not None else fallback) for w, v in zip(weights, variances))
        spread = ((log_predictions - (log_predictions @ weights)[:, None]) ** 2) @ weights
        return np.sqrt(within + spread)

    # ---- artifacts ----------------------------------------------------------------------------------------
    def _learned_arrays(self) -> dict[str, np.ndarray]:
        return dict(self.to_artifact().arrays)

    def _restore(self, arrays: Mapping[str, np.ndarray], extra: Mapping[str, Any]) -> None:
        raise NotImplementedError("GeometricEnsemble is restored by from_artifact")

    def to_artifact(self) -> Artifact:
        self._check_fitted()
        specs: list[dict[str, Any]] = []
        extras: list[dict[str, Any]] = []
        arrays: dict[str, np.ndarray] = {}
        for i, member in enumerate(self.members_):
            spec, member_arrays, member_extra = nest_artifact(f"members.{i}", member.to_artifact())
            specs.append(spec)
            extras.append(member_extra)
            arrays.update(member_arrays)
        weights = None if self.weights is None else [float(w) for w in self.weights]
        others = {name: value for name, value in self.get_params().items() if name not in ("members", "weights")}
        return Artifact(
            kind=self.kind,
            params={"members": specs, "weights": weights, **others},
            feature_schema_hash=self.feature_schema_hash_ or "",
            arrays=arrays,
            extra={"feature_names": list(self.feature_names_), "members": extras},
        )

    @classmethod
    def from_artifact(cls, artifact: Artifact, *, source: str = "artifact") -> "GeometricEnsemble":
        from nas_latency.models import model_from_artifact

        check_artifact(artifact, kind=cls.kind, feature_schema_hash=None, source=source)
        specs = artifact.params.get("members") or []
        extras = artifact.extra.get("members") or [{} for _ in specs]
        members: list[CrossDeviceModel] = []
        for i, spec in enumerate(specs):
            member = model_from_artifact(
                unnest_artifact(f"members.{i}", spec, artifact, extras[i]), source=f"{source} (member {i})"
            )
            if not isinstance(member, CrossDeviceModel):
                raise InvalidInputError(f"{source}: member {i} of a {cls.kind} must be a cross-device model")
            members.append(member)
        others = {name: value for name, value in artifact.params.items() if name != "members"}
        model = cls(members=members, **others)
        model.members_ = members
        model.weights_ = model._checked_weights()
        model.feature_schema_hash_ = artifact.feature_schema_hash
        model.feature_names_ = tuple(artifact.extra.get("feature_names", ()))
        return model
