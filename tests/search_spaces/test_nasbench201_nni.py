"""NNI 3.0 samples of the NAS-Bench-201 space."""

from __future__ import annotations

import itertools

import pytest

from nas_latency.errors import InvalidInputError
from search_spaces.nasbench201 import OPS, format_arch
from search_spaces.nasbench201.nni_adapter import NNI_LABELS, from_nni_sample, to_nni_sample

MIXED = "|nor_conv_3x3~0|+|none~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_1x1~1|skip_connect~2|"
SAMPLE = {
    "cell/0_1": "conv_3x3",
    "cell/0_2": "none",
    "cell/1_2": "avg_pool_3x3",
    "cell/0_3": "skip_connect",
    "cell/1_3": "conv_1x1",
    "cell/2_3": "skip_connect",
}


def test_sample_maps_to_the_string_and_back() -> None:
    assert NNI_LABELS == tuple(SAMPLE)
    assert from_nni_sample(SAMPLE) == MIXED
    assert to_nni_sample(MIXED) == SAMPLE


def test_every_architecture_round_trips() -> None:
    for ops in itertools.product(OPS, repeat=6):
        arch = format_arch(ops)
        assert from_nni_sample(to_nni_sample(arch)) == arch


@pytest.mark.parametrize(
    "change, needle",
    [
        ({"cell/2_3": None}, "missing label(s) cell/2_3"),
        ({"cell/3_4": "none"}, "unknown label(s) cell/3_4"),
        ({"cell/1_2": "nor_conv_3x3"}, "label 'cell/1_2' has unknown op 'nor_conv_3x3'; known NNI ops: none, "
         "skip_connect, conv_1x1, conv_3x3, avg_pool_3x3"),
        ({"cell/0_1": 3}, "label 'cell/0_1' has unknown op 3"),
    ],
)
def test_bad_samples_say_what_is_wrong(change: dict[str, object], needle: str) -> None:
    sample: dict[str, object] = dict(SAMPLE)
    for label, value in change.items():
        if value is None:
            del sample[label]
        else:
            sample[label] = value
    with pytest.raises(InvalidInputError) as info:
        from_nni_sample(sample)
    assert needle in str(info.value)


def test_non_mapping_sample_is_an_error() -> None:
    with pytest.raises(InvalidInputError, match="must be a mapping"):
        from_nni_sample(["conv_3x3"] * 6)  # type: ignore[arg-type]
