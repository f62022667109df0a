"""Signature sets: the few architectures a new device measures so that a cross-device model can onboard it.

:func:`select_signature` chooses them from the training devices' latencies (methods in
:data:`SELECTION_METHODS`); :mod:`nas_latency.signature.ridge_prior` is the closed-form ridge-prior adapter the
``informative`` method scores with and the signature models impute missing signature latencies with.
"""

from nas_latency.signature.ridge_prior import LOG_FLOOR_MS, FeatureTransform, RidgePrior, log_latency
from nas_latency.signature.selection import SELECTION_METHODS, select_signature, spearman_matrix

__all__ = [
    "LOG_FLOOR_MS",
    "SELECTION_METHODS",
    "FeatureTransform",
    "RidgePrior",
    "log_latency",
    "select_signature",
    "spearman_matrix",
]
