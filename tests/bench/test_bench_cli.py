"""``nas-latency bench space|device|evaluate`` end to end, on a temporary NAS_LATENCY_HOME (tiny sweeps)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from nas_latency.cli import main

DEVICE = "this-machine"


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse usage errors
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("nas_latency_home")


@pytest.fixture()
def env(home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("NAS_LATENCY_HOME", str(home))
    return home


@pytest.fixture(scope="module")
def onboarded(home: Path) -> dict:
    """``bench device --quick`` once for the module (its own monkeypatch: module scope)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NAS_LATENCY_HOME", str(home))
        import contextlib
        import sys

        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["bench", "device", "--name", DEVICE, "--quick", "--format", "json"])
        assert code == 0, err.getvalue()[-2000:]
        sys.stderr.write(err.getvalue()[-500:])
        return json.loads(out.getvalue())


def test_bench_device_quick_onboards_registers_and_stores_models(onboarded: dict, env: Path) -> None:
    from nas_latency.bench.device import load_stacked_models
    from nas_latency.models.layer_stacked import LAYER_MODELS
    from nas_latency.store import open_store

    assert onboarded["device"] == DEVICE and onboarded["runtime"] == "torch" and onboarded["level"] == "quick"
    counts = onboarded["counts"]
    assert counts["kernels"] > 30 and counts["blocks"] >= 5 and counts["signature_networks"] == 10
    assert counts["mapping_blocks"] == counts["blocks"] and counts["failed"] == 0
    assert set(onboarded["signature_check"]) == set(LAYER_MODELS)
    assert onboarded["noise"]["kernels"]["n"] == counts["kernels"]
    assert 0 < onboarded["overhead_ms"] < 1.0
    with open_store(None) as store:
        assert str(env) in store.url
        device = store.get_device(DEVICE)
        assert device.metadata["bench_runtime"] == "torch" and device.metadata["environment"]["threads"] == 1
        register_rows = store.measurements(DEVICE, "nasbench201", source="register")
        bench_rows = store.measurements(DEVICE, "nasbench201", source="bench:torch")
        assert len(register_rows) == 10 and len(bench_rows) == 10
        assert all(r.cv is not None and r.iqr_ms is not None and r.n_runs for r in bench_rows)
        kernels = store.measurements(DEVICE, "bench.kernels")
        assert len(kernels) >= counts["kernels"] and all(k.environment["statistic"] == "fastest_round" for k in kernels)
        assert len(store.measurements(DEVICE, "bench.blocks")) > counts["blocks"]  # blocks and their layers
        models = load_stacked_models(store, DEVICE)
    assert set(models) == set(LAYER_MODELS)


def test_the_registered_device_answers_predictions(onboarded: dict, env: Path, capsys: pytest.CaptureFixture[str]
                                                   ) -> None:
    code, out, err = run(["devices", "list", "--space", "nasbench201", "--format", "json"], capsys)
    assert code == 0, err
    assert DEVICE in {row["name"] if "name" in row else row.get("device") for row in json.loads(out)}


def test_bench_evaluate_reports_every_model_next_to_the_noise(onboarded: dict, env: Path, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    out_dir = tmp_path / "report"
    code, out, err = run(["bench", "evaluate", "--name", DEVICE, "--quick", "--nasbench201", "2", "--fbnet", "1",
                          "--classic", "vgg11_bn_cifar", "--passes", "2", "--out", str(out_dir), "--format", "json"],
                         capsys)
    assert code == 0, err
    document = json.loads(out)
    assert document["n_networks"] == 4 and document["groups"] == {"nasbench201": 2, "fbnet": 1, "classic": 1}
    expected = {"mixed", "lookup", "roofline", "mixed/discrete", "mixed/no_mapping", "mixed/hot_only"}
    assert expected <= set(document["metrics"])
    for row in document["metrics"].values():
        assert {"mape_pct", "within_10pct", "spearman"} <= set(row)
    noise = document["noise"]
    assert noise["passes"] == 2 and "retest_mape_pct" in noise and noise["cv_median"] >= 0
    signature = set(json.loads(json.dumps(onboarded["signature_check"])))
    assert signature  # the evaluation networks exclude the signature architectures:
    from nas_latency.store import open_store

    with open_store(None) as store:
        registered = {m.arch for m in store.measurements(DEVICE, "nasbench201", source="register")}
        stored = store.measurements(DEVICE, "bench.networks")
    assert not registered & {n["name"] for n in document["networks"]}
    assert len(stored) == 4
    names = sorted(p.name for p in out_dir.iterdir())
    assert names == [f"bench-eval-{DEVICE}.json", f"bench-eval-{DEVICE}.md", f"bench-eval-{DEVICE}.png"]
    markdown = (out_dir / f"bench-eval-{DEVICE}.md").read_text()
    assert "test-retest" in markdown and "| mixed |" in markdown
    # the table form
    code, out, _ = run(["bench", "evaluate", "--name", DEVICE, "--quick", "--nasbench201", "2", "--fbnet", "1",
                        "--classic", "none", "--passes", "1", "--models", "mixed,lookup"], capsys)
    assert code == 0 and out.splitlines()[0].split()[:3] == ["model", "mape_pct", "within_10pct"]


def test_bench_space_prints_csv_and_stores_for_a_device(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["bench", "space", "--space", "nasbench201", "--sample", "2", "--quick", "--device",
                          "space-bench"], capsys)
    assert code == 0, err
    assert out.splitlines()[0] == "arch,latency_ms"  # what `devices register --measurements` reads
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 2 and all(float(r["latency_ms"]) > 0 for r in rows)
    assert "median CV" in err
    csv_path = env / "space.csv"
    csv_path.write_text(out)
    code, _, err = run(["devices", "register", "space-registered", "--space", "nasbench201", "--measurements",
                        str(csv_path)], capsys)
    assert code == 2 and "at least" in err  # two archs are too few to register, but the file itself parses
    code, out, err = run(["bench", "space", "--space", "nasbench201", "--sample", "1", "--quick", "--details",
                          "--timer", "cpu"], capsys)
    assert code == 0, err
    row = next(csv.DictReader(io.StringIO(out)))
    assert float(row["cv"]) >= 0 and 0 < float(row["cpu_share"]) <= 1.5
    assert row["rounds"] == "1"
    # interleaved rounds: every architecture measured in each round, pooled
    code, out, err = run(["bench", "space", "--space", "nasbench201", "--sample", "2", "--quick", "--details",
                          "--rounds", "2"], capsys)
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 2 and all(r["rounds"] == "2" for r in rows)
    from nas_latency.store import open_store

    with open_store(None) as store:
        assert len(store.measurements("space-bench", "nasbench201", source="bench:torch")) == 2


@pytest.mark.parametrize("argv", [
    ["bench", "space", "--space", "no-such-space", "--sample", "2"],
    ["bench", "space", "--space", "nasbench201", "--sample", "0"],
    ["bench", "space", "--space", "nasbench201"],
    ["bench", "space", "--space", "nasbench201", "--sample", "2", "--runtime", "tpu"],
    ["bench", "space", "--space", "nasbench201", "--sample", "1", "--pin", "9999"],
    ["bench", "space", "--space", "nasbench201", "--sample", "1", "--timer", "cpu", "--threads", "2"],
    ["bench", "space", "--space", "nasbench201", "--sample", "1", "--timer", "gpu"],
    ["bench", "space", "--space", "nasbench201", "--sample", "1", "--rounds", "0"],
    ["bench", "device", "--name", "bad name!", "--quick"],
    ["bench", "device", "--quick"],
    ["bench", "device", "--name", "x", "--threads", "0"],
    ["bench", "evaluate", "--name", "never-onboarded", "--quick"],
    ["bench", "evaluate", "--name", "x", "--classic", "alexnet"],
    ["bench", "evaluate", "--name", "x", "--passes", "0"],
    ["bench"],
])
def test_bad_arguments_exit_2(argv: list[str], env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(argv, capsys)
    assert code == 2, (argv, out, err)
    assert out == "" and err


def test_what_storing_or_reporting_would_fail_on_is_refused_before_measuring(
        onboarded: dict, env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A bad device name, a duplicate architecture, an unusable store, an unwritable report folder or a model the
    device lacks: exit 2 before any network is measured (the runner is never asked for a sampler)."""
    import nas_latency.bench.runners as runners
    from nas_latency.store import open_store

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("measured before refusing")

    for runner in (runners.TorchEagerRunner, runners.OnnxRuntimeRunner):
        monkeypatch.setattr(runner, "sampler", never)
    archs = tmp_path / "archs.txt"
    arch = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
    archs.write_text(f"{arch}\n{arch}\n")
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with open_store(None) as store:
        devices_before = [d.name for d in store.list_devices()]
    cases = [
        (["bench", "space", "--space", "nasbench201", "--sample", "1", "--quick", "--device", "bad name!"],
         "bad name!"),
        (["bench", "space", "--space", "nasbench201", "--archs", str(archs), "--quick", "--device", "dup-dev"],
         "architecture 2"),
        (["bench", "space", "--space", "nasbench201", "--sample", "1", "--quick", "--device", "d",
          "--store", "bogus://x"], "bogus"),
        (["bench", "evaluate", "--name", DEVICE, "--quick", "--nasbench201", "3", "--fbnet", "0",
          "--classic", "none", "--passes", "1", "--out", str(blocker / "sub")], "--out"),
        (["bench", "evaluate", "--name", DEVICE, "--quick", "--models", "no-such-model"],
         "has no bench model(s) ['no-such-model']; it has ["),
    ]
    for argv, needle in cases:
        code, out, err = run(argv, capsys)
        assert code == 2 and needle in err and out == "", (argv, err)
    with open_store(None) as store:
        assert [d.name for d in store.list_devices()] == devices_before


def test_the_cuda_runtime_without_a_gpu_is_refused_at_once(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: the cuda runtime is allowed")
    code, out, err = run(["bench", "space", "--space", "nasbench201", "--sample", "2", "--quick", "--runtime",
                          "cuda"], capsys)
    assert code == 1 and out == "" and "needs a GPU" in err and len(err) < 500
