"""The measured tables bundled with the package (see README.md in this folder for sources and licences).

Every loader returns a fresh :class:`pandas.DataFrame` read from the package itself, never from the source
checkout's ``shared/`` folder, so an installed tool works anywhere.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path

import pandas as pd

from nas_latency.errors import NotFoundError

_FILES = {
    "nb201_latency": "nb201_latency.parquet",
    "nb201_devices": "nb201_devices.csv",
    "nb201_cifar10_accuracy": "nb201_cifar10_accuracy.parquet",
    "fbnet_latency": "fbnet_latency.parquet",
    "ganesan_mobile_latency": "ganesan_mobile_latency.csv",
    "ganesan_mobile_runs": "ganesan_mobile_runs.parquet",
    "ganesan_mobile_devices": "ganesan_mobile_devices.csv",
    "ganesan_mobile_networks": "ganesan_mobile_networks.csv",
    "ganesan_mobile_layers": "ganesan_mobile_layers.parquet",
}

# Columns of the latency tables that are not device columns.
NB201_ID_COLUMNS = ("arch_index", "arch_string")
FBNET_ID_COLUMNS = ("arch_id", *(f"layer{i:02d}" for i in range(22)))
GANESAN_ID_COLUMNS = ("network_id", "network_name", "in_original_csv", "flops_csv_M")


def table_names() -> list[str]:
    return sorted(_FILES)


def table_path(name: str) -> Path:
    """Path of a bundled table inside the installed package."""
    try:
        filename = _FILES[name]
    except KeyError:
        raise NotFoundError(f"no bundled table {name!r}; known tables: {', '.join(table_names())}") from None
    return Path(str(resources.files(__package__).joinpath(filename)))


@lru_cache(maxsize=None)
def _read(name: str) -> pd.DataFrame:
    path = table_path(name)
    frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    # Plain object/str columns behave the same under every pandas version; categorical ids do not.
    for column in frame.columns:
        if isinstance(frame[column].dtype, pd.CategoricalDtype) or pd.api.types.is_string_dtype(frame[column]):
            frame[column] = frame[column].astype(str) if not frame[column].isna().any() else frame[column]
    return frame


def load_table(name: str) -> pd.DataFrame:
    """A copy of the bundled table ``name`` (callers may modify it freely)."""
    return _read(name).copy()


def device_columns(name: str) -> list[str]:
    """The device columns of a latency table (read from the file, never assumed)."""
    ids = {
        "nb201_latency": NB201_ID_COLUMNS,
        "fbnet_latency": FBNET_ID_COLUMNS,
        "ganesan_mobile_latency": GANESAN_ID_COLUMNS,
    }
    if name not in ids:
        raise NotFoundError(f"{name!r} is not a latency table; latency tables: {', '.join(sorted(ids))}")
    return [c for c in _read(name).columns if c not in ids[name]]


def load_nb201_latency() -> pd.DataFrame:
    return load_table("nb201_latency")


def load_nb201_accuracy() -> pd.DataFrame:
    return load_table("nb201_cifar10_accuracy")


def nb201_accuracy(metric: str = "cifar10_valid_acc") -> dict[str, float]:
    """arch string → bundled accuracy (%) of every NAS-Bench-201 architecture; ``metric`` is a column of the
    ``nb201_cifar10_accuracy`` table."""
    frame = load_table("nb201_cifar10_accuracy")
    columns = [c for c in frame.columns if c.endswith("_acc")]
    if metric not in columns:
        raise NotFoundError(f"{metric!r} is not an accuracy column of nb201_cifar10_accuracy; columns: "
                            f"{', '.join(columns)}")
    return dict(zip(frame["arch_string"].astype(str), frame[metric].astype(float)))


def load_fbnet_latency() -> pd.DataFrame:
    return load_table("fbnet_latency")


def load_ganesan_latency() -> pd.DataFrame:
    return load_table("ganesan_mobile_latency")


def load_ganesan_layers() -> pd.DataFrame:
    return load_table("ganesan_mobile_layers")


def load_ganesan_networks() -> pd.DataFrame:
    return load_table("ganesan_mobile_networks")
