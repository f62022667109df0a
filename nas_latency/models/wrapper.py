"""What every model that wraps one base model shares (``degenerate_aware``, ``without_costs``, ``clamp_speed``,
``drop_outliers``).

The wrapper is fitted around ``base_``, a fitted clone of its ``base``; it has no learned state of its own worth a
fingerprint, so its fingerprint is the base's. An adaptation nests the base's under ``base``, and so does the
artifact: the base's artifact is nested under ``base`` and restored first by :meth:`WrappedModel._restore_base`.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from nas_latency.errors import InvalidInputError
from nas_latency.models.artifacts import Artifact, check_artifact
from nas_latency.models.base import CrossDeviceModel, DeviceAdaptation
from nas_latency.models.linalg import nest_artifact, unnest_adaptation, unnest_artifact


class WrappedModel(CrossDeviceModel):
    """A :class:`CrossDeviceModel` around one ``base`` model; subclasses fit ``base_`` and add their own params."""

    base: CrossDeviceModel
    base_: CrossDeviceModel

    def _check_base(self) -> None:
        if not isinstance(self.base, CrossDeviceModel):
            raise InvalidInputError(f"base must be a CrossDeviceModel, got {type(self.base).__name__}")

    @property
    def min_measurements(self) -> int:  # type: ignore[override]
        """A wrapper adapts its base on the device's measurements, so it needs what its base needs."""
        return self.base.min_measurements

    @property
    def fingerprint_(self) -> str:
        return str(getattr(self.base_, "fingerprint_", ""))

    def _base_adaptation(self, adaptation: DeviceAdaptation) -> DeviceAdaptation:
        return unnest_adaptation("base", adaptation, adaptation.info["base"])

    # ---- artifacts ----------------------------------------------------------------------------------------
    def _learned_arrays(self) -> dict[str, np.ndarray]:
        return dict(self.to_artifact().arrays)

    def _restore(self, arrays: Mapping[str, np.ndarray], extra: Mapping[str, Any]) -> None:
        raise NotImplementedError(f"{type(self).__name__} is restored by from_artifact")

    def _wrapper_artifact(self, params: Mapping[str, Any], extra: Mapping[str, Any] | None = None,
                          arrays: Mapping[str, np.ndarray] | None = None) -> Artifact:
        """The artifact: the base's nested under ``base``, the wrapper's other ``params``, ``extra`` and its own
        learned ``arrays`` (named outside ``base.``)."""
        self._check_fitted()
        spec, base_arrays, base_extra = nest_artifact("base", self.base_.to_artifact())
        return Artifact(
            kind=self.kind,
            params={"base": spec, **params},
            feature_schema_hash=self.feature_schema_hash_ or "",
            arrays={**base_arrays, **(arrays or {})},
            extra={"feature_names": list(self.feature_names_), "base": base_extra, **(extra or {})},
        )

    @classmethod
    def _restore_base(cls, artifact: Artifact, *, source: str) -> tuple[CrossDeviceModel, dict[str, Any]]:
        """The wrapper's artifact, checked: its restored base model and its other parameters."""
        from nas_latency.models import model_from_artifact  # the registry imports every model, this module too

        check_artifact(artifact, kind=cls.kind, feature_schema_hash=None, source=source)
        params = dict(artifact.params)
        member = unnest_artifact("base", params.pop("base"), artifact, artifact.extra.get("base", {}))
        base = model_from_artifact(member, source=f"{source} (base)")
        if not isinstance(base, CrossDeviceModel):
            raise InvalidInputError(f"{source}: the base of a {cls.kind} model must be a cross-device model")
        return base, params


__all__ = ["WrappedModel"]
