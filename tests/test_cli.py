"""The `nas-latency` command: results on stdout, diagnostics on stderr, exit codes 0/1/2."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from nas_latency.cli import main

ALL_CONV = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_spaces_lists_every_registered_space(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "spaces", "--format", "json")
    assert code == 0
    names = {row["space"]: row for row in json.loads(out)}
    assert set(names) == {"nasbench201", "fbnet", "ganesan_mobile"}
    assert names["nasbench201"]["measured_archs"] == 15625
    assert names["fbnet"]["input_shape"] == [1, 3, 32, 32]


def test_describe_summary_of_the_all_conv_nb201_cell(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "describe", "--space", "nasbench201", ALL_CONV, "--summary", "--format", "json")
    assert code == 0
    summary = json.loads(out)
    assert summary["params"] == 1_531_546
    assert summary["macs"] == pytest.approx(220e6, rel=0.01)


def test_describe_layer_table_as_csv_sums_to_the_summary(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "describe", "--space", "nasbench201", ALL_CONV, "--format", "csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert sum(int(r["params"]) for r in rows) == 1_531_546
    assert {"conv", "batch_norm", "relu", "add", "linear"} <= {r["op"] for r in rows}
    assert err == ""


def test_describe_a_layer_table_json_round_trips(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from nas_latency.ir import network_to_json
    from search_spaces import get_space

    space = get_space("fbnet")
    arch = space.sample(1, seed=3)[0]
    path = tmp_path / "net.json"
    path.write_text(network_to_json(space.to_ir(arch)))
    code, out, _ = run_cli(capsys, "describe", str(path), "--summary", "--format", "json")
    assert code == 0
    assert json.loads(out)["macs"] == space.to_ir(arch).macs


def test_describe_json_lists_the_skipped_operators_and_suffixes_are_case_blind(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import numpy as np
    import onnx

    helper = onnx.helper
    weights = onnx.numpy_helper.from_array(np.zeros((4, 3, 1, 1), dtype=np.float32), name="w")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
         helper.make_node("LeakyRelu", ["c"], ["y"], name="leaky")], "g",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 4, 8, 8])], initializer=[weights])
    path = tmp_path / "net.ONNX"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    code, out, err = run_cli(capsys, "describe", str(path), "--on-unsupported", "skip", "--format", "json")
    assert code == 0, err
    document = json.loads(out)
    assert document["summary"]["skipped_operators"] == 1
    assert [(s["node"], s["operator"]) for s in document["skipped"]] == [("leaky", "LeakyRelu")]


def test_featurize_reads_stdin_and_keeps_order(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from search_spaces import get_space

    archs = get_space("nasbench201").sample(5, seed=1)
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n".join(archs) + "\n"))
    code, out, _ = run_cli(capsys, "featurize", "--space", "nasbench201", "--archs", "-", "--format", "csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["arch"] for r in rows] == archs
    assert all(float(r["total.macs"]) > 0 for r in rows)


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["describe", "--space", "nasbench201", "|nor_conv_3x3~0|+|"], "nasbench201"),
        (["describe", "--space", "fbnet", "k3_e1-skip"], "22"),
        (["describe", "--space", "nowhere", "x"], "unknown search space"),
        (["describe", "--space", "ganesan_mobile", "not_a_network"], "not_a_network"),
        (["featurize", "--space", "nasbench201", "--archs", "/nonexistent/archs.txt"], "cannot read"),
        (["describe", "{missing}.onnx"], ".onnx"),
    ],
)
def test_bad_input_exits_2_with_a_message(
    argv: list[str], needle: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    argv = [a.replace("{missing}", str(tmp_path / "missing")) for a in argv]
    code, out, err = run_cli(capsys, *argv)
    assert code == 2
    assert out == ""
    assert needle in err


def test_corrupt_onnx_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "corrupt.onnx"
    path.write_bytes(b"\x08\x07definitely not a protobuf \xff\xfe")
    code, out, err = run_cli(capsys, "describe", str(path))
    assert code == 2
    assert out == ""
    assert "corrupt.onnx" in err


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as excinfo:
        main(["featurize", "--archs", "x.txt"])  # --space missing
    assert excinfo.value.code == 2


def test_console_script_is_installed_and_runs() -> None:
    script = Path(sys.executable).parent / "nas-latency"
    result = subprocess.run([str(script), "spaces", "--format", "csv"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].startswith("space,")
    bad = subprocess.run([str(script), "describe", "--space", "nasbench201", "bogus"], capture_output=True, text=True,
                         timeout=120)
    assert bad.returncode == 2 and bad.stdout == "" and "error:" in bad.stderr


def test_benchmark_predict_prints_cli_in_process_and_onboarding_figures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("NAS_LATENCY_HOME", str(tmp_path / "home"))
    code, out, err = run_cli(capsys, "benchmark", "predict", "--batch", "1000", "--repeats", "2", "--format", "json")
    assert code == 0, err
    figures = json.loads(out)
    assert figures["cli_archs"] == 15625 and 0 < figures["cli_wall_s_min"] <= figures["cli_wall_s_median"]
    assert figures["in_process_batch"] == 1000 and figures["in_process_archs_per_s"] > 0
    assert figures["onboard_measurements"] == 10 and figures["onboard_ms_median"] > 0
    assert "onboarding a new device from 10 measurements" in err
