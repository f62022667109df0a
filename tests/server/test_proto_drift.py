"""The generated code is what the .proto files generate (`make proto`), and the .proto files keep the house style."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROTO_ROOT = ROOT / "proto"
PROTOS = sorted((PROTO_ROOT / "nas_latency" / "v1").glob("*.proto"))
GENERATED = ROOT / "nas_latency" / "v1"


def generate(out: Path) -> None:
    """The same command as the Makefile's `proto` target, writing under ``out``."""
    command = [sys.executable, "-m", "grpc_tools.protoc", f"-I{PROTO_ROOT}", f"--python_out={out}",
               f"--pyi_out={out}", f"--grpc_python_out={out}", *map(str, PROTOS)]
    subprocess.run(command, check=True, capture_output=True, text=True)


def test_the_protos_exist() -> None:
    assert {p.name for p in PROTOS} == {"latency_service.proto", "resources.proto"}


def test_generated_code_matches_the_protos(tmp_path: Path) -> None:
    generate(tmp_path)
    fresh = {p.name: p.read_text() for p in (tmp_path / "nas_latency" / "v1").iterdir()}
    committed = {p.name: p.read_text() for p in GENERATED.iterdir() if re.search(r"_pb2(_grpc)?\.pyi?$", p.name)}
    assert sorted(fresh) == sorted(committed), "generated files differ in name: run `make proto`"
    stale = [name for name in fresh if fresh[name] != committed[name]]
    assert not stale, f"{stale} differ from what the .proto files generate: run `make proto`"


def test_makefile_regenerates_with_the_same_command() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert "-m grpc_tools.protoc -Iproto --python_out=. --pyi_out=. --grpc_python_out=." in makefile


def _declarations(text: str) -> list[tuple[int, str]]:
    """(line number, line) of every field, enum value, rpc, message, enum and service declaration."""
    lines = text.splitlines()
    found = []
    for i, line in enumerate(lines):
        stripped = line.strip()
        if re.match(r"^(message|enum|service|rpc|oneof)\b", stripped) or re.match(
            r"^(optional |repeated )?[\w.<>, ]+ \w+ = \d+;", stripped
        ) or re.match(r"^[A-Z][A-Z0-9_]* = \d+;", stripped):
            found.append((i, stripped))
    return found


@pytest.mark.parametrize("proto", PROTOS, ids=lambda p: p.name)
def test_every_declaration_has_a_comment(proto: Path) -> None:
    lines = proto.read_text().splitlines()
    missing = [f"{proto.name}:{i + 1}: {decl}" for i, decl in _declarations(proto.read_text())
               if not lines[i - 1].strip().startswith("//")]
    assert not missing, "declarations without a comment:\n" + "\n".join(missing)


@pytest.mark.parametrize("proto", PROTOS, ids=lambda p: p.name)
def test_package_and_enum_style(proto: Path) -> None:
    text = proto.read_text()
    assert "package nas_latency.v1;" in text
    for name, body in re.findall(r"enum (\w+) \{(.*?)\}", text, flags=re.S):
        values = re.findall(r"(\w+) = (\d+);", body)
        prefix = re.sub(r"(?<!^)(?=[A-Z])", "_", name).upper()
        assert values[0] == (f"{prefix}_UNSPECIFIED", "0"), name
        assert all(v.startswith(prefix + "_") for v, _ in values), name


def test_one_request_and_response_per_rpc() -> None:
    text = (PROTO_ROOT / "nas_latency" / "v1" / "latency_service.proto").read_text()
    rpcs = re.findall(r"rpc (\w+)\((?:stream )?(\w+)\) returns \((?:stream )?(\w+)\)", text)
    assert len(rpcs) == 11
    for name, request, response in rpcs:
        assert (request, response) == (f"{name}Request", f"{name}Response")
    requests = [r for _, r, _ in rpcs]
    assert len(set(requests)) == len(requests)


def test_latency_fields_carry_their_unit() -> None:
    text = "\n".join(p.read_text() for p in PROTOS)
    for field in re.findall(r"^\s*(?:optional |repeated )?double (\w+) = \d+;", text, flags=re.M):
        assert field.endswith(("_ms", "_ratio", "_std", "cv")), field
