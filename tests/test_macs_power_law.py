"""The ``macs_loglinear`` estimate for arbitrary networks where a space's built-in model takes only its own ids."""

from __future__ import annotations

import numpy as np
import pytest

from nas_latency.errors import InvalidInputError
from nas_latency.ir import IR_FEATURE_NAMES, NetworkBuilder
from nas_latency.macs_power_law import MacsPowerLaw, fit_macs_power_law
from nas_latency.measurements import MeasuredArchs
from nas_latency.models.linalg import repeated_median_line
from search_spaces import get_space

SPACE = "nasbench201"
LIVE = ["|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|",
        "|nor_conv_1x1~0|+|nor_conv_1x1~0|nor_conv_1x1~1|+|skip_connect~0|nor_conv_1x1~1|nor_conv_1x1~2|",
        "|avg_pool_3x3~0|+|skip_connect~0|avg_pool_3x3~1|+|skip_connect~0|skip_connect~1|nor_conv_1x1~2|",
        "|nor_conv_3x3~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|",
        "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|avg_pool_3x3~2|"]
#: every op computed, none reaching the output: a device may skip it all
DEAD = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|none~0|none~1|none~2|"


def _macs(archs: list[str]) -> np.ndarray:
    return get_space(SPACE).ir_features(archs)[:, IR_FEATURE_NAMES.index("total.macs")]


def _conv_net(channels: int) -> object:
    b = NetworkBuilder(f"conv{channels}")
    b.conv(b.input((1, 3, 32, 32)), channels, 3, padding=1)
    return b.build()


def test_repeated_median_line_ignores_one_far_point_and_handles_ties() -> None:
    x = np.array([0.0, 1.0, 1.0, 2.0, 3.0, 4.0])
    y = 2.0 + 0.5 * x
    y[0] = -40.0  # one far point: least squares would tilt
    intercept, slope = repeated_median_line(x, y)
    assert (intercept, slope) == pytest.approx((2.0, 0.5))
    assert np.polyfit(x, y, 1)[0] > 3  # what least squares makes of it
    assert repeated_median_line(np.ones(4), np.array([1.0, 2.0, 3.0, 9.0])) == (2.5, 0.0)
    with pytest.raises(InvalidInputError, match="at least 2 points"):
        repeated_median_line(np.ones(1), np.ones(1))


def test_a_dead_cell_measured_near_zero_does_not_turn_the_law_upside_down() -> None:
    """A device that skips dead cells measures ~0 ms for many counted MACs; least squares on those points gave
    a negative slope (a 55 K-MAC conv predicted slower than a 694 M-MAC one)."""
    macs = _macs(LIVE)
    latency = 0.1 * (macs / 1e6) ** 0.8
    measured = MeasuredArchs(SPACE, (DEAD, *LIVE), (0.004, *latency))
    assert get_space(SPACE).degenerate_mask([DEAD]).tolist() == [True]
    law = fit_macs_power_law(get_space(SPACE), measured)
    assert law.n_fitted == len(LIVE)
    assert law.slope == pytest.approx(0.8)
    assert law.intercept == pytest.approx(np.log(0.1) - 0.8 * np.log(1e6))
    small, large = law.predict([_conv_net(4), _conv_net(256)])
    assert small < large


def test_a_falling_line_is_floored_to_the_median() -> None:
    macs = _macs(LIVE)
    latency = 1e3 / np.sqrt(macs)
    law = fit_macs_power_law(get_space(SPACE), MeasuredArchs(SPACE, tuple(LIVE), tuple(latency)))
    assert law.slope == 0.0
    assert law.predict([_conv_net(4)])[0] == pytest.approx(np.median(latency))


def test_too_few_live_measurements_are_refused() -> None:
    measured = MeasuredArchs(SPACE, (DEAD, LIVE[0]), (0.01, 3.0))
    with pytest.raises(InvalidInputError, match="at least 2 measured nasbench201 architectures that are not "
                                                "degenerate.*got 1 of 2"):
        fit_macs_power_law(get_space(SPACE), measured)


def test_predict_is_the_power_law() -> None:
    law = MacsPowerLaw(intercept=-3.0, slope=0.5, n_fitted=5)
    net = _conv_net(16)
    assert law.predict([net])[0] == pytest.approx(np.exp(-3.0) * net.macs ** 0.5)
