"""matplotlib for the package's PNG reports: imported lazily with the non-interactive Agg backend (the rest of the
package never needs it), and one way to write a finished figure."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nas_latency.errors import FailedPreconditionError


def pyplot():  # type: ignore[no-untyped-def]
    """``matplotlib.pyplot`` on the Agg backend; ``FailedPreconditionError`` when matplotlib is missing."""
    try:
        import matplotlib
    except ImportError as exc:  # pragma: no cover - matplotlib is a dependency of the dev environment
        raise FailedPreconditionError(f"plotting needs matplotlib, which is not installed ({exc})") from None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: str | Path, *, dpi: int) -> Path:
    """Lay ``fig`` out, write it to ``path`` (parent folders created) and close it."""
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi)
    pyplot().close(fig)
    return out


__all__ = ["pyplot", "save_figure"]
