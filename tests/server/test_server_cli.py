"""Every onboarding command with `--server HOST:PORT` prints exactly what it prints in-process (same store)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import pytest

from nas_latency.cli import main
from nas_latency.ir import NetworkBuilder, network_to_json

SPACE = "nasbench201"
TOKEN = "s3cret-token"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def setup(serve: Callable[..., Any], sqlite_url: str, tmp_path: Path, signature_archs: list[str],
          sample_archs: list[str], bundled_measurements: Callable[..., dict[str, float]]) -> dict[str, Any]:
    running = serve(sqlite_url, token=TOKEN, device_ttl_s=0)
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    measurements = tmp_path / "m.csv"
    values = bundled_measurements(signature_archs, 9)
    measurements.write_text("arch,latency_ms\n" + "".join(f"{a},{v!r}\n" for a, v in values.items()))
    signature = tmp_path / "sig.csv"
    other = bundled_measurements(signature_archs, 10)
    signature.write_text("arch,latency_ms\n" + "".join(f"{a},{v!r}\n" for a, v in other.items()))
    archs = tmp_path / "archs.txt"
    archs.write_text("\n".join(sample_archs) + "\n")
    measured = tmp_path / "measured.csv"
    truth = bundled_measurements(sample_archs[:40], 10)
    measured.write_text("arch,latency_ms\n" + "".join(f"{a},{v!r}\n" for a, v in truth.items()))
    b = NetworkBuilder("conv")
    b.conv(b.input((1, 3, 32, 32)), 16, 3, padding=1)
    (tmp_path / "conv.json").write_text(network_to_json(b.build()))
    networks = tmp_path / "networks.txt"
    networks.write_text(f"{sample_archs[0]}\n@{tmp_path / 'conv.json'}\n")
    return {"local": ["--store", sqlite_url], "remote": ["--server", running.address, "--token-file", str(token_file)],
            "measurements": str(measurements), "signature": str(signature), "archs": str(archs),
            "measured": str(measured), "networks": str(networks), "address": running.address}


COMMANDS = [
    ["signature", "--space", SPACE, "--size", "10"],
    ["signature", "--space", SPACE, "--size", "5", "--format", "csv"],
    ["devices", "register", "cli-dev", "--space", SPACE, "--measurements", "{measurements}", "--description", "x"],
    ["devices", "list", "--format", "json"],
    ["devices", "list", "--space", SPACE],
    ["devices", "show", "cli-dev", "--space", SPACE, "--format", "json"],
    ["predict", "--space", SPACE, "--device", "cli-dev", "--archs", "{archs}"],
    ["predict", "--space", SPACE, "--signature", "{signature}", "--archs", "{archs}", "--format", "json"],
    ["predict", "--space", SPACE, "--device", "cli-dev", "--archs", "{archs}", "--uncertainty"],
    ["models", "list", "--format", "csv"],
    ["rank", "--space", SPACE, "--device", "cli-dev", "--archs", "{archs}", "--format", "json"],
    ["rank", "--space", SPACE, "--signature", "{signature}", "--measured", "{measured}", "--format", "csv"],
    ["predict", "--space", SPACE, "--device", "cli-dev", "--archs", "{networks}"],
    ["choose", "--space", SPACE, "--device", "cli-dev", "--max-latency-ms", "12", "--limit", "5", "--format", "json"],
    ["choose", "--space", SPACE, "--signature", "{signature}", "--max-latency-ms", "12", "--limit", "5"],
]


def test_remote_commands_print_what_in_process_commands_print(setup: dict[str, Any],
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    for command in COMMANDS:
        argv = [part.format(**setup) for part in command]
        local = run(capsys, *argv, *setup["local"])
        remote = run(capsys, *argv, *setup["remote"])
        assert local[0] == 0, (argv, local[2])
        if command[:2] == ["devices", "register"]:  # the second run replaces the first's measurements, and says so
            assert remote[:2] == local[:2] and "10 earlier nasbench201 measurements were replaced" in remote[2]
            continue
        assert remote == local, argv
    rows = json.loads(run(capsys, *[p.format(**setup) for p in COMMANDS[7]], *setup["remote"])[1])
    assert len(rows) == 200 and all(r["latency_ms"] > 0 for r in rows)


def test_remote_spaces_also_say_whether_the_models_are_loaded(setup: dict[str, Any],
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    local = json.loads(run(capsys, "spaces", "--format", "json")[1])
    code, out, err = run(capsys, "spaces", "--format", "json", "--server", setup["address"])
    assert code == 0, err
    remote = json.loads(out)
    assert [{k: row[k] for k in local[0]} for row in remote] == local
    assert {row["space"]: row["model_loaded"] for row in remote}[SPACE] is True


ERRORS = [
    (["predict", "--space", SPACE, "--device", "cli-dev", "--archs", "{bad_archs}"], 2),
    (["predict", "--space", "nope", "--device", "cli-dev", "--archs", "{archs}"], 2),
    (["predict", "--space", SPACE, "--device", "nobody", "--archs", "{archs}"], 2),
    (["devices", "show", "nobody", "--space", SPACE], 2),
    (["devices", "remove", "nobody"], 2),
    (["devices", "add", "nobody", "--space", SPACE, "--measurements", "{measurements}"], 2),
    (["signature", "--space", SPACE, "--size", "0"], 2),
]


def test_remote_errors_match_in_process_errors(setup: dict[str, Any], tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text("|nor_conv_3x3~0|+|\n")
    setup = dict(setup, bad_archs=str(bad))
    register = [p.format(**setup) for p in COMMANDS[2]]
    assert run(capsys, *register, *setup["local"])[0] == 0
    for command, code in ERRORS:
        argv = [part.format(**setup) for part in command]
        local = run(capsys, *argv, *setup["local"])
        remote = run(capsys, *argv, *setup["remote"])
        assert local[0] == code, (argv, local)
        assert remote == local, argv


def test_remote_writes_and_removal(setup: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    register = [p.format(**setup) for p in COMMANDS[2]]
    no_token = [a for a in setup["remote"] if a not in ("--token-file",)][:2]
    code, _, err = run(capsys, *register, *no_token)
    assert code == 1 and "requires a token" in err
    assert run(capsys, *register, *setup["remote"])[0] == 0
    code, _, err = run(capsys, "devices", "remove", "cli-dev", *setup["remote"])
    assert (code, err) == (0, "removed device cli-dev\n")
    assert run(capsys, "devices", "show", "cli-dev", "--space", SPACE, *setup["local"])[0] == 2
    code, _, err = run(capsys, "devices", "list", *setup["local"], "--server", "127.0.0.1:1")
    assert code == 2 and "not both" in err


def test_remote_additions_print_what_in_process_additions_print(setup: dict[str, Any], tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    """`devices add` through the server, then its retry in-process on the same store under the same request id,
    which writes nothing; the device is then predicted alike both ways."""
    register = [p.format(**setup) for p in COMMANDS[2]]
    assert run(capsys, *register, *setup["local"])[0] == 0
    more = tmp_path / "more.csv"
    more.write_text("".join(Path(setup["measured"]).read_text().splitlines(keepends=True)[:5]))  # header + 4 rows
    add = ["devices", "add", "cli-dev", "--space", SPACE, "--measurements", str(more), "--request-id", "r-1",
           "--format", "json"]
    no_token = [a for a in setup["remote"] if a not in ("--token-file",)][:2]
    code, _, err = run(capsys, *add, *no_token)
    assert code == 1 and "requires a token" in err
    remote = run(capsys, *add, *setup["remote"])
    local = run(capsys, *add, *setup["local"])
    assert remote[0] == local[0] == 0, (remote, local)
    first, retry = json.loads(remote[1])[0], json.loads(local[1])[0]
    assert (first["n_measurements"], first["inserted"], first["duplicate_request"], first["model_refitted"]) == (
        14, 4, False, True)
    assert retry == {**first, "duplicate_request": True}
    predict = ["predict", "--space", SPACE, "--device", "cli-dev", "--archs", setup["archs"]]
    assert run(capsys, *predict, *setup["remote"]) == run(capsys, *predict, *setup["local"])


def test_models_train_through_the_server(setup: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "models", "train", "--space", SPACE, "--model", "blr", "--format", "json",
                         *setup["remote"])
    assert code == 0, err
    row = json.loads(out)[0]
    assert (row["space"], row["model"]) == (SPACE, "blr") and row["training_devices"] >= 2
    code, _, err = run(capsys, "models", "train", "--space", SPACE, "--exclude-device", "no-such-device",
                       *setup["remote"])
    assert code == 2 and "no-such-device" in err
    code, out, _ = run(capsys, "models", "list", "--format", "json", *setup["remote"])
    versions = [(m["space"], m["version"], m["model"]) for m in json.loads(out)]
    assert versions[-1] == (SPACE, 2, "blr")  # the failed training stored nothing
    assert run(capsys, "models", "list", "--format", "json", *setup["local"])[1] == out


def test_remote_predict_of_network_files_matches_in_process(setup: dict[str, Any], tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    from nas_latency.data import load_table
    from nas_latency.ir import network_to_dict
    from search_spaces import get_space

    space = get_space("ganesan_mobile")
    frame = load_table("ganesan_mobile_latency").set_index("network_name")
    device = [c for c in frame.columns if c.startswith("Pixel_3a")][0]
    names = space.measured_archs()
    measurements = tmp_path / "phone.csv"
    measurements.write_text("arch,latency_ms\n" + "".join(f"{n},{float(frame.loc[n, device])!r}\n" for n in names[:10]))
    layers = tmp_path / "net.json"
    layers.write_text(json.dumps(network_to_dict(space.to_ir(names[20]))))
    archs = tmp_path / "phone_archs.txt"
    archs.write_text(f"{names[20]}\n@{layers}\n")
    argv = ["predict", "--space", "ganesan_mobile", "--signature", str(measurements), "--archs", str(archs)]
    local = run(capsys, *argv, *setup["local"])
    remote = run(capsys, *argv, *setup["remote"])
    assert local[0] == 0, local[2]
    assert remote[:2] == local[:2]  # stderr differs: the first of the two trains the phones' model (progress bar)
    values = [float(line.split(",")[1]) for line in local[1].splitlines()[1:]]
    assert len(values) == 2 and values[1] == pytest.approx(values[0], rel=1e-9)  # the same network, twice
    code, _, err = run(capsys, *argv, "--uncertainty", *setup["local"])
    assert code == 2 and "line 2 is a network file" in err
