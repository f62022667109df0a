"""Malformed inputs to the frontends: corrupt, truncated and non-ONNX files and bytes, files of unknown type.
Each is an InvalidInputError that says what is wrong and where."""

from __future__ import annotations

import types
from pathlib import Path

import numpy as np
import pytest
import torch

from nas_latency.errors import InvalidInputError, UnsupportedOperatorError
from nas_latency.frontends import Conversion, export_onnx, load_network_file, onnx_to_ir
from nas_latency.ir import network_to_json, structure_key


@pytest.fixture
def onnx_file(cases: types.ModuleType, tmp_path: Path) -> Path:
    path = tmp_path / "chain.onnx"
    torch.manual_seed(0)
    export_onnx(cases.chain(), torch.randn(1, 3, 16, 16), path)
    return path


@pytest.mark.parametrize("fraction", [0.02, 0.5, 0.97])
def test_truncated_file(onnx_file: Path, tmp_path: Path, fraction: float) -> None:
    data = onnx_file.read_bytes()
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(InvalidInputError, match="not a valid ONNX model") as info:
        onnx_to_ir(truncated)
    assert str(truncated) in info.value.message
    assert not isinstance(info.value, UnsupportedOperatorError)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x08\x07\x12\x04junk\xff\xff\xff",
        np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes(),
        b'{"format": "nas-latency/layer-table"}',
    ],
    ids=["empty", "junk", "random", "json"],
)
def test_corrupt_bytes(data: bytes) -> None:
    with pytest.raises(InvalidInputError, match="ONNX bytes: not a valid ONNX model"):
        onnx_to_ir(data)


def test_non_onnx_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.onnx"
    path.write_text("this is a text file, not a model\n")
    with pytest.raises(InvalidInputError, match="not a valid ONNX model") as info:
        onnx_to_ir(path)
    assert str(path) in info.value.message


@pytest.mark.parametrize("bad", [12, None, ["model.onnx"]])
def test_wrong_argument_type(bad: object) -> None:
    with pytest.raises(InvalidInputError, match="expected a path, bytes or an onnx.ModelProto"):
        onnx_to_ir(bad)  # type: ignore[arg-type]


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="no such ONNX file"):
        onnx_to_ir(tmp_path / "absent.onnx")
    with pytest.raises(InvalidInputError, match="no such ONNX file"):
        onnx_to_ir(tmp_path)  # a directory


def test_bad_on_unsupported(onnx_file: Path) -> None:
    with pytest.raises(InvalidInputError, match="on_unsupported must be one of"):
        onnx_to_ir(onnx_file, on_unsupported="warn")  # type: ignore[arg-type]


# ---- load_network_file -------------------------------------------------------------------------------------------
def test_load_network_file_dispatches_on_the_suffix(onnx_file: Path, tmp_path: Path) -> None:
    from_onnx = load_network_file(onnx_file)
    assert isinstance(from_onnx, Conversion) and from_onnx.skipped == ()
    table = tmp_path / "chain.json"
    table.write_text(network_to_json(from_onnx.network))
    from_json = load_network_file(table)
    assert from_json == Conversion(from_json.network, ())
    assert structure_key(from_json.network) == structure_key(from_onnx.network)
    upper = tmp_path / "CHAIN.ONNX"
    upper.write_bytes(onnx_file.read_bytes())
    assert structure_key(load_network_file(upper).network) == structure_key(from_onnx.network)


def test_load_network_file_errors(onnx_file: Path, tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="unknown network file type '.pt'"):
        load_network_file(tmp_path / "model.pt")
    with pytest.raises(InvalidInputError, match="cannot read layer table"):
        load_network_file(tmp_path / "absent.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(InvalidInputError, match="not valid JSON"):
        load_network_file(broken)
    mislabelled = tmp_path / "model.json"
    mislabelled.write_bytes(onnx_file.read_bytes())
    with pytest.raises(InvalidInputError, match="not a layer table"):
        load_network_file(mislabelled)
