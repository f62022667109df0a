"""NNI 3.0 samples of the NAS-Bench-201 space ⇄ architecture strings (no ``nni`` import needed).

NNI's model-space hub ``NasBench201().simplify()`` exposes one choice per cell edge, labelled
``cell/{source}_{target}``, with NNI's op names; they map one to one onto NAS-Bench-201's.
"""

from __future__ import annotations

from typing import Mapping

from nas_latency.errors import InvalidInputError
from search_spaces.nasbench201.codec import EDGES, format_arch, parse_arch

#: the sample labels in edge order
NNI_LABELS: tuple[str, ...] = tuple(f"cell/{source}_{target}" for source, target in EDGES)
#: NNI op name -> NAS-Bench-201 op name
NNI_TO_NB201: dict[str, str] = {
    "none": "none",
    "skip_connect": "skip_connect",
    "conv_1x1": "nor_conv_1x1",
    "conv_3x3": "nor_conv_3x3",
    "avg_pool_3x3": "avg_pool_3x3",
}
NB201_TO_NNI: dict[str, str] = {nb: nni for nni, nb in NNI_TO_NB201.items()}


def from_nni_sample(sample: Mapping[str, object]) -> str:
    """The architecture string of an NNI sample ``{'cell/0_1': 'conv_3x3', ...}``; ``InvalidInputError`` naming
    missing or unknown labels and unknown op values."""
    if not isinstance(sample, Mapping):
        raise InvalidInputError(f"an NNI sample must be a mapping of label -> op name, got {type(sample).__name__}")
    missing = [label for label in NNI_LABELS if label not in sample]
    if missing:
        raise InvalidInputError(
            f"NNI sample is missing label(s) {', '.join(missing)}; a NAS-Bench-201 sample has exactly "
            f"{', '.join(NNI_LABELS)}"
        )
    unknown = sorted(str(label) for label in sample if label not in NNI_LABELS)
    if unknown:
        raise InvalidInputError(
            f"NNI sample has unknown label(s) {', '.join(unknown)}; a NAS-Bench-201 sample has exactly "
            f"{', '.join(NNI_LABELS)}"
        )
    ops: list[str] = []
    for label in NNI_LABELS:
        value = sample[label]
        if not isinstance(value, str) or value not in NNI_TO_NB201:
            raise InvalidInputError(
                f"NNI sample label {label!r} has unknown op {value!r}; known NNI ops: {', '.join(NNI_TO_NB201)}"
            )
        ops.append(NNI_TO_NB201[value])
    return format_arch(ops)


def to_nni_sample(arch: str) -> dict[str, str]:
    """The NNI 3.0 sample (label -> NNI op name) of an architecture string."""
    return {label: NB201_TO_NNI[op] for label, op in zip(NNI_LABELS, parse_arch(arch))}
