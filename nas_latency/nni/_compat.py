"""Import NNI 3.0 quietly and without side effects outside ``NAS_LATENCY_HOME``.

NNI prints its INFO logs to **stdout** in colour on first import (our stdout carries results only), warns about
every torch class it does not know, its dependencies cache fonts under ``~/.cache/matplotlib``, and importing it
makes ``torch._dynamo`` create ``$TMPDIR/torchinductor_<user>``. Everything in :mod:`nas_latency.nni` imports NNI
through :func:`import_nni`, which turns all four off once.
"""

from __future__ import annotations

import logging
import os
import threading
import warnings
from types import ModuleType

from nas_latency.errors import FailedPreconditionError

_LOCK = threading.Lock()
_NNI: ModuleType | None = None
#: warnings NNI logs once per filtered (constraint-rejected) model: expected, counted by us, not news
_EXPECTED_PER_TRIAL = ("has no metric. Skip.", "is not in the running list. Ignore.")


class _DropExpectedPerTrialWarnings(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = str(record.msg)
        return not any(text in message for text in _EXPECTED_PER_TRIAL)


def import_nni() -> ModuleType:
    """The ``nni`` package, imported once: stdout logging off (records propagate to the application's handlers at
    WARNING and above), torch-version warnings suppressed, ``MPLCONFIGDIR`` and ``TORCHINDUCTOR_CACHE_DIR``
    defaulted into ``NAS_LATENCY_HOME``."""
    global _NNI
    with _LOCK:
        if _NNI is not None:
            return _NNI
        for variable, folder in (("MPLCONFIGDIR", "matplotlib"), ("TORCHINDUCTOR_CACHE_DIR", "torchinductor")):
            if not os.environ.get(variable):  # matplotlib's font cache; torch._dynamo's $TMPDIR/torchinductor_<user>
                from nas_latency.store.home import nas_latency_home

                path = nas_latency_home() / folder
                path.mkdir(mode=0o700, exist_ok=True)
                os.environ[variable] = str(path)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "<class torch...> is found to be not a nn.Module" for new torch
                import nni
                import nni.nas.nn.pytorch  # noqa: F401  (the warnings come from here)
                from nni.runtime.log import silence_stdout
        except ImportError as exc:
            raise FailedPreconditionError(
                f"the NNI plug-in needs nni==3.0 (with pytorch-lightning, torchmetrics, filelock<3.12): {exc}"
            ) from None
        silence_stdout()
        root = logging.getLogger("nni")
        root.setLevel(logging.WARNING)
        root.propagate = True
        logging.getLogger("nni.nas.strategy.evolution").addFilter(_DropExpectedPerTrialWarnings())
        _NNI = nni
        return nni
