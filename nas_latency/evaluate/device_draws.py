"""The random numbers drawn for one device in an evaluation: from the run's seed, the device's name and the
draw's own stream, so every model of a run gets the same draws (a held-out device's spiked or noisy signature
measurements, a simulated device's timing noise)."""

from __future__ import annotations

import zlib

import numpy as np


def device_rng(seed: int, device: str, *stream: int) -> np.random.Generator:
    """The random numbers drawn for one device: from the seed, the device's name and the draw's own ``stream``
    (a perturbation of a held-out device's measurements, a simulated device's timing noise), so every model of a
    run gets the same draws."""
    return np.random.default_rng([int(seed), zlib.crc32(device.encode("utf-8")), *stream])


def spiked_position(seed: int, device: str, budget: int) -> int:
    """Which of a held-out device's ``budget`` signature measurements ``held_out_spike`` multiplies: drawn from the
    seed and the device's name, so every model of a run gets the same spiked measurement."""
    return int(device_rng(seed, device).integers(budget))


def measurement_noise(seed: int, device: str, budget: int, sigma: float) -> np.ndarray:
    """The factors ``exp(σ z)`` (``z`` standard normal) ``held_out_noise`` multiplies a held-out device's
    ``budget`` signature measurements by: drawn from the seed and the device's name (a stream apart from
    :func:`spiked_position`'s), so every model of a run gets the same noisy measurements and a larger σ scales the
    same draws."""
    z = device_rng(seed, device, 1).standard_normal(budget)
    return np.exp(float(sigma) * z)


__all__ = ["device_rng", "measurement_noise", "spiked_position"]
