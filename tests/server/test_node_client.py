"""The Node.js example client (@grpc/grpc-js + @grpc/proto-loader, reading only the .proto) against a real server:
installed with npm into a temporary copy, it gets the numbers the Python client gets."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "node_client"
SPACE = "nasbench201"
TOKEN = "s3cret-token"


@pytest.fixture(scope="module")
def node_client(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of examples/node_client with its dependencies installed by npm."""
    npm, node = shutil.which("npm"), shutil.which("node")
    if npm is None or node is None:
        pytest.fail("the Node.js client test needs node and npm on PATH", pytrace=False)
    target = tmp_path_factory.mktemp("node") / "node_client"
    shutil.copytree(EXAMPLE, target, ignore=shutil.ignore_patterns("node_modules"))
    done = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--loglevel=error"], cwd=target,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"npm install failed:\n{done.stdout}\n{done.stderr}"
    assert (target / "node_modules" / "@grpc" / "grpc-js").is_dir()
    return target


def run_node(client_dir: Path, *args: str) -> tuple[int, dict[str, Any]]:
    env = {"PATH": str(Path(shutil.which("node") or "node").parent), "NAS_LATENCY_PROTO_DIR": str(ROOT / "proto")}
    done = subprocess.run(["node", "client.js", *args], cwd=client_dir, capture_output=True, text=True, timeout=120,
                          env=env)
    assert done.stdout.strip(), done.stderr
    return done.returncode, json.loads(done.stdout.strip().splitlines()[-1])


def test_node_client_predicts_what_python_predicts(node_client: Path, serve: Callable[..., Any], sqlite_url: str,
                                                   tmp_path: Path, signature_archs: list[str],
                                                   sample_archs: list[str],
                                                   bundled_measurements: Callable[..., dict[str, float]]) -> None:
    running = serve(sqlite_url, token=TOKEN)
    signature = bundled_measurements(signature_archs, 11)
    (tmp_path / "sig.json").write_text(json.dumps(signature))
    archs = sample_archs[:50]
    (tmp_path / "archs.txt").write_text("\n".join(archs) + "\n")
    common = ["--address", running.address, "--space", SPACE, "--signature", str(tmp_path / "sig.json"),
              "--archs", str(tmp_path / "archs.txt")]

    code, out = run_node(node_client, *common)
    assert code == 0, out
    python = running.client().predict_detailed(SPACE, archs, signature=signature, include_uncertainty=True)
    assert out["spaces"] == ["fbnet", "ganesan_mobile", SPACE]
    assert out["signature_archs"] == running.client().signature_set(SPACE, 5)
    np.testing.assert_array_equal(np.array(out["latency_ms"]), python.latency_ms)
    assert out["model"] == python.model and out["signature_key"] == python.signature_key
    assert [d["name"] for d in out["nearest_devices"]] == [d.name for d in python.nearest_devices]
    assert {d["kind"] for d in out["nearest_devices"]} <= {"KNOWN_DEVICE_KIND_BUNDLED", "KNOWN_DEVICE_KIND_REGISTERED"}

    # a write: without the token it is refused; with it the device is registered and predicted by name
    code, out = run_node(node_client, *common, "--register", "node-device")
    assert code == 1 and out["error"]["code"] == "UNAUTHENTICATED"
    code, out = run_node(node_client, *common, "--register", "node-device", "--token", TOKEN)
    assert code == 0, out
    assert out["registered"] == {"name": "node-device", "space": SPACE, "description": "registered from Node.js",
                                 "n_measurements": len(signature)}
    np.testing.assert_array_equal(np.array(out["latency_ms"]),
                                  running.client().predict(SPACE, archs, device="node-device"))

    # a malformed request: a canonical code, and the server stays up
    (tmp_path / "bad.txt").write_text("|nor_conv_3x3~0|+|\n")
    code, out = run_node(node_client, "--address", running.address, "--space", SPACE, "--signature",
                         str(tmp_path / "sig.json"), "--archs", str(tmp_path / "bad.txt"))
    assert code == 1 and out["error"]["code"] == "INVALID_ARGUMENT" and "nasbench201 architecture" in out["error"]["details"]
    assert running.client().predict(SPACE, archs[:1], signature=signature)[0] > 0
