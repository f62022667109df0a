"""Behaviour of the store, the same on SQLite and PostgreSQL (fixtures in conftest.py)."""

from __future__ import annotations

import math
import os
import time
from datetime import timezone
from typing import Callable

import numpy as np
import pytest

from nas_latency.errors import ConflictError, FailedPreconditionError, InvalidInputError, NotFoundError
from nas_latency.store import (
    AddResult,
    MeasurementRow,
    ReplaceResult,
    Store,
)

NB = "nasbench201"
FB = "fbnet"


def rows(*pairs: tuple[str, float]) -> list[MeasurementRow]:
    return [MeasurementRow(arch, latency) for arch, latency in pairs]


def latencies(store: Store, device: str, space: str, source: str | None = None) -> dict[str, float]:
    return {m.arch: m.latency_ms for m in store.measurements(device, space, source=source)}


# ---- devices ------------------------------------------------------------------------------------------
def test_device_round_trip_and_update(store: Store) -> None:
    created = store.upsert_device("pixel4", description="Pixel 4 CPU", metadata={"runtime": "tflite", "threads": 4})
    assert created.name == "pixel4"
    assert created.description == "Pixel 4 CPU"
    assert created.metadata == {"runtime": "tflite", "threads": 4}
    assert created.created_at.tzinfo is not None and created.created_at.utcoffset().total_seconds() == 0
    assert store.get_device("pixel4") == created

    # None leaves a field alone; a value replaces it; created_at never moves.
    updated = store.upsert_device("pixel4", metadata={"runtime": "nnapi"})
    assert updated.description == "Pixel 4 CPU"
    assert updated.metadata == {"runtime": "nnapi"}
    assert updated.created_at == created.created_at
    assert updated.updated_at >= created.updated_at
    assert store.upsert_device("pixel4", description="").description == ""
    assert store.get_device("pixel4").metadata == {"runtime": "nnapi"}

    fresh = store.upsert_device("bare")
    assert (fresh.description, fresh.metadata) == ("", {})


def test_get_device_not_found_lists_known_devices(store: Store) -> None:
    with pytest.raises(NotFoundError, match="no devices are registered"):
        store.get_device("pixel4")
    for name in ["pixel3", "pixel4", "jetson-nano", "rpi4", "a100", "v100", "cpu-x86"]:
        store.upsert_device(name)
    with pytest.raises(NotFoundError) as info:
        store.get_device("pixel5")
    message = info.value.message
    assert "'pixel5'" in message and "pixel4" in message and "pixel3" in message and "2 more" in message
    assert info.value.reason == "NOT_FOUND"


def test_list_devices_with_per_space_counts(store: Store) -> None:
    assert store.list_devices() == []
    store.upsert_device("b-dev", description="second")
    store.upsert_device("a-dev")
    store.upsert_device("idle")
    store.replace_measurements("a-dev", NB, rows(("x", 1.0), ("y", 2.0)), source="register")
    # the same arch from another source counts once: counts are distinct architectures
    store.add_measurements("a-dev", NB, rows(("x", 1.1), ("z", 3.0)), source="contribute")
    store.replace_measurements("a-dev", FB, rows(("f", 5.0)), source="register")
    store.replace_measurements("b-dev", FB, rows(("f", 6.0), ("g", 7.0)), source="register")

    summaries = store.list_devices()
    assert [s.name for s in summaries] == ["a-dev", "b-dev", "idle"]
    by_name = {s.name: s for s in summaries}
    assert dict(by_name["a-dev"].measurement_counts) == {NB: 3, FB: 1}
    assert by_name["a-dev"].total_measurements == 4
    assert dict(by_name["b-dev"].measurement_counts) == {FB: 2}
    assert by_name["b-dev"].description == "second"
    assert dict(by_name["idle"].measurement_counts) == {}

    assert [s.name for s in store.list_devices(NB)] == ["a-dev"]
    assert [s.name for s in store.list_devices(FB)] == ["a-dev", "b-dev"]
    assert store.list_devices("unknown-space") == []


def test_delete_device_cascades_measurements_and_requests(store: Store) -> None:
    store.upsert_device("d1")
    store.upsert_device("d2")
    store.add_measurements("d1", NB, rows(("x", 1.0)), source="contribute", request_id="req-1")
    store.add_measurements("d2", NB, rows(("x", 2.0)), source="contribute")
    store.delete_device("d1")
    with pytest.raises(NotFoundError):
        store.get_device("d1")
    with pytest.raises(NotFoundError, match="'d1'"):
        store.measurements("d1", NB)
    assert store.devices_with_measurements(NB) == ["d2"]
    with pytest.raises(NotFoundError, match="'d1'"):
        store.delete_device("d1")
    # re-registered, the device starts clean: its old request ids are forgotten with it
    store.upsert_device("d1")
    assert store.measurements("d1", NB) == []
    result = store.add_measurements("d1", NB, rows(("x", 1.0)), source="contribute", request_id="req-1")
    assert result == AddResult(inserted=1, replaced=0, duplicate_request=False)


def test_delete_device_deletes_the_artifacts_named_under_it(store: Store) -> None:
    store.upsert_device("d1")
    store.upsert_device("d1.x")
    for name in ("d1/stacked/mixed", "d1/stacked/roofline", "d1.x/stacked/mixed", "d1", "builtin"):
        store.put_artifact("bench", name, kind="k", manifest={}, blob=b"one")
    store.put_artifact("bench", "d1/stacked/mixed", kind="k", manifest={}, blob=b"two")  # a second version
    store.delete_device("d1")
    left = sorted((a.name, a.version) for a in store.list_artifacts())
    assert left == [("builtin", 1), ("d1", 1), ("d1.x/stacked/mixed", 1)]
    with pytest.raises(NotFoundError):
        store.get_artifact("bench", "d1/stacked/mixed")


# ---- measurements -------------------------------------------------------------------------------------
def test_measurement_round_trip_all_fields(store: Store) -> None:
    store.upsert_device("gpu")
    env = {"runtime": "torch", "cuda": True, "batch": 1, "versions": {"torch": "2.13.0"}}
    batch = [
        MeasurementRow(
            "|nor_conv_3x3~0|+|skip_connect~0|none~1|+|", 1.25, n_runs=50, iqr_ms=0.01, cv=0.02, environment=env
        ),
        MeasurementRow("b-arch", np.float32(2.5), n_runs=np.int64(7)),  # numpy scalars are accepted
        MeasurementRow("A-arch", 3.0),
    ]
    assert store.add_measurements("gpu", NB, batch, source="bench", request_id="r1") == AddResult(3, 0)
    got = store.measurements("gpu", NB)
    assert [m.arch for m in got] == ["A-arch", "b-arch", "|nor_conv_3x3~0|+|skip_connect~0|none~1|+|"]  # bytewise
    first = got[2]
    assert (first.device, first.space, first.source, first.request_id) == ("gpu", NB, "bench", "r1")
    assert (first.latency_ms, first.n_runs, first.iqr_ms, first.cv) == (1.25, 50, 0.01, 0.02)
    assert first.environment == env
    assert first.created_at.tzinfo == timezone.utc
    assert first.to_row() == batch[0]
    b = got[1]
    assert (b.latency_ms, b.n_runs, b.iqr_ms, b.cv, b.environment) == (2.5, 7, None, None, None)
    assert isinstance(b.latency_ms, float) and type(b.n_runs) is int
    assert store.measurements("gpu", FB) == []


def test_replace_semantics(store: Store) -> None:
    store.upsert_device("dev")
    assert store.replace_measurements("dev", NB, rows(("a", 1.0), ("b", 2.0), ("c", 3.0)), source="register") == (
        ReplaceResult(inserted=3, replaced=0, removed=0)
    )
    store.add_measurements("dev", NB, rows(("a", 9.0), ("q", 9.5)), source="contribute")
    store.replace_measurements("dev", FB, rows(("f", 4.0)), source="register")

    result = store.replace_measurements("dev", NB, rows(("b", 20.0), ("d", 40.0)), source="register")
    assert result == ReplaceResult(inserted=1, replaced=1, removed=2)
    assert latencies(store, "dev", NB, "register") == {"b": 20.0, "d": 40.0}
    assert latencies(store, "dev", NB, "contribute") == {"a": 9.0, "q": 9.5}  # other source untouched
    assert latencies(store, "dev", FB) == {"f": 4.0}  # other space untouched
    # both sources are listed, ordered by arch then source
    assert [(m.arch, m.source) for m in store.measurements("dev", NB)] == [
        ("a", "contribute"), ("b", "register"), ("d", "register"), ("q", "contribute")
    ]
    assert store.replace_measurements("dev", NB, [], source="register") == ReplaceResult(0, 0, 2)
    assert latencies(store, "dev", NB, "register") == {}
    with pytest.raises(NotFoundError, match="'ghost'"):
        store.replace_measurements("ghost", NB, rows(("a", 1.0)), source="register")


def test_add_upserts_within_a_source(store: Store) -> None:
    store.upsert_device("dev")
    assert store.add_measurements("dev", NB, rows(("a", 1.0), ("b", 2.0)), source="contribute") == AddResult(2, 0)
    assert store.add_measurements("dev", NB, rows(("b", 2.5), ("c", 3.0)), source="contribute") == AddResult(1, 1)
    assert latencies(store, "dev", NB) == {"a": 1.0, "b": 2.5, "c": 3.0}
    # a different source is a different row, not a replacement
    assert store.add_measurements("dev", NB, rows(("a", 1.5)), source="bench") == AddResult(1, 0)
    assert len(store.measurements("dev", NB)) == 4
    assert latencies(store, "dev", NB, "bench") == {"a": 1.5}


def test_add_is_idempotent_under_a_request_id(store: Store) -> None:
    store.upsert_device("dev")
    store.upsert_device("other")
    first = rows(("a", 1.0), ("b", 2.0))
    assert store.add_measurements("dev", NB, first, source="contribute", request_id="req-1") == AddResult(2, 0)
    # a later, unrelated write changes arch a
    store.add_measurements("dev", NB, rows(("a", 7.0)), source="contribute", request_id="req-2")
    before = store.measurements("dev", NB)

    retry = store.add_measurements("dev", NB, list(reversed(first)), source="contribute", request_id="req-1")
    assert retry == AddResult(inserted=2, replaced=0, duplicate_request=True)  # the original counts
    assert store.measurements("dev", NB) == before  # nothing written: a is still 7.0
    assert latencies(store, "dev", NB)["a"] == 7.0

    for device, space, source, batch in [
        ("dev", NB, "contribute", rows(("a", 1.0), ("b", 2.0001))),  # other value
        ("dev", NB, "contribute", rows(("a", 1.0))),  # fewer rows
        ("dev", FB, "contribute", first),  # other space
        ("dev", NB, "bench", first),  # other source
        ("other", NB, "contribute", first),  # other device
    ]:
        with pytest.raises(ConflictError, match="req-1") as info:
            store.add_measurements(device, space, batch, source=source, request_id="req-1")
        assert info.value.reason == "CONFLICT"
    assert store.measurements("dev", NB) == before
    assert store.measurements("dev", FB) == []
    assert store.measurements("other", NB) == []

    # without a request id, the same call simply writes again
    assert store.add_measurements("dev", NB, first, source="contribute") == AddResult(0, 2)
    assert latencies(store, "dev", NB)["a"] == 1.0


def test_add_to_unknown_device_records_nothing(store: Store) -> None:
    with pytest.raises(NotFoundError, match="'ghost'"):
        store.add_measurements("ghost", NB, rows(("a", 1.0)), source="contribute", request_id="req-x")
    store.upsert_device("ghost")
    # the failed call did not burn its request id
    result = store.add_measurements("ghost", NB, rows(("a", 1.0)), source="contribute", request_id="req-x")
    assert result == AddResult(1, 0, duplicate_request=False)


def test_failed_write_rolls_back_completely(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """A database-level failure in the middle of a batch leaves no row and no request record behind."""
    import nas_latency.store.store as store_module

    store.upsert_device("dev")
    store.replace_measurements("dev", NB, rows(("keep", 1.0)), source="register")
    monkeypatch.setattr(store_module, "check_rows", lambda batch, allow_empty: list(batch))  # skip validation
    bad = rows(("a", 1.0), ("b", 2.0), ("c", -1.0))  # the CHECK (latency_ms > 0) rejects the third row
    with pytest.raises(Exception):
        store.add_measurements("dev", NB, bad, source="contribute", request_id="req-bad")
    with pytest.raises(Exception):
        store.replace_measurements("dev", NB, bad, source="register")
    monkeypatch.undo()
    assert latencies(store, "dev", NB) == {"keep": 1.0}
    good = store.add_measurements("dev", NB, rows(("a", 1.0)), source="contribute", request_id="req-bad")
    assert not good.duplicate_request
    # the store is still usable on every pooled connection
    assert store.get_device("dev").name == "dev"


def test_devices_with_measurements(store: Store) -> None:
    for name, n in [("d3", 3), ("d1", 1), ("d5", 5)]:
        store.upsert_device(name)
        store.replace_measurements(name, NB, rows(*[(f"arch{i}", 1.0 + i) for i in range(n)]), source="register")
    store.upsert_device("empty")
    # the same archs from a second source do not count twice
    store.add_measurements("d1", NB, rows(("arch0", 1.0)), source="contribute")
    assert store.devices_with_measurements(NB) == ["d1", "d3", "d5"]
    assert store.devices_with_measurements(NB, min_rows=3) == ["d3", "d5"]
    assert store.devices_with_measurements(NB, 5) == ["d5"]
    assert store.devices_with_measurements(NB, 6) == []
    assert store.devices_with_measurements(FB) == []
    with pytest.raises(InvalidInputError, match="min_rows"):
        store.devices_with_measurements(NB, 0)


# ---- validation ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("batch", "match"),
    [
        (rows(("a", 1.0), ("b", 0.0)), r"rows\[1\] \(arch 'b'\): latency_ms must be finite and > 0"),
        (rows(("a", -2.0)), r"rows\[0\].*latency_ms"),
        (rows(("a", math.nan)), r"latency_ms.*nan"),
        (rows(("a", math.inf)), r"latency_ms.*inf"),
        ([MeasurementRow("a", "3.0")], r"latency_ms must be a number"),  # type: ignore[arg-type]
        ([MeasurementRow("a", True)], r"latency_ms must be a number"),
        (rows(("", 1.0)), r"rows\[0\]: arch must be a non-empty string"),
        (rows(("ok", 1.0), ("   ", 1.0)), r"rows\[1\]: arch must be a non-empty string"),
        (rows((" a", 1.0)), r"surrounding whitespace"),
        (rows(("a\nb", 1.0)), r"control characters"),
        ([MeasurementRow(None, 1.0)], r"arch must be a non-empty string"),  # type: ignore[arg-type]
        (rows(("a", 1.0), ("b", 1.0), ("a", 2.0)), r"rows\[2\] \(arch 'a'\): arch repeats rows\[0\]"),
        ([MeasurementRow("a", 1.0, n_runs=0)], r"n_runs must be an integer >= 1"),
        ([MeasurementRow("a", 1.0, n_runs=2.5)], r"n_runs"),  # type: ignore[arg-type]
        ([MeasurementRow("a", 1.0, iqr_ms=-0.1)], r"iqr_ms must be finite and >= 0"),
        ([MeasurementRow("a", 1.0, cv=math.nan)], r"cv must be finite"),
        ([MeasurementRow("a", 1.0, environment={"x": object()})], r"environment is not JSON-serializable"),
        ([MeasurementRow("a", 1.0, environment=["x"])], r"environment must be a JSON object"),  # type: ignore[arg-type]
        ([("a", 1.0)], r"rows\[0\] must be a MeasurementRow"),
        ([], r"rows is empty"),
    ],
)
def test_add_validates_rows_and_writes_nothing(store: Store, batch: list, match: str) -> None:
    store.upsert_device("dev")
    with pytest.raises(InvalidInputError, match=match):
        store.add_measurements("dev", NB, batch, source="contribute", request_id="req-v")
    assert store.measurements("dev", NB) == []
    if batch:  # replace applies the same row rules
        with pytest.raises(InvalidInputError):
            store.replace_measurements("dev", NB, batch, source="register")


@pytest.mark.parametrize("name", ["", "-lead", ".hidden", "has space", "slash/name", "é", "x" * 129, None, 3])
def test_bad_device_names(store: Store, name: object) -> None:
    with pytest.raises(InvalidInputError, match="device name must match"):
        store.upsert_device(name)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="device name"):
        store.get_device(name)  # type: ignore[arg-type]


def test_other_field_validation(store: Store) -> None:
    assert store.upsert_device("Ok_name-1.2").name == "Ok_name-1.2"
    assert store.upsert_device("x" * 128).name == "x" * 128
    with pytest.raises(InvalidInputError, match="space must match"):
        store.add_measurements("Ok_name-1.2", "bad space", rows(("a", 1.0)), source="s")
    with pytest.raises(InvalidInputError, match="source must match"):
        store.add_measurements("Ok_name-1.2", NB, rows(("a", 1.0)), source="")
    with pytest.raises(InvalidInputError, match="request_id must match"):
        store.add_measurements("Ok_name-1.2", NB, rows(("a", 1.0)), source="s", request_id="has space")
    with pytest.raises(InvalidInputError, match="metadata of device 'd' must be a JSON object"):
        store.upsert_device("d", metadata=[1, 2])  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="metadata of device 'd' is not JSON-serializable"):
        store.upsert_device("d", metadata={"x": math.nan})
    with pytest.raises(InvalidInputError, match="description"):
        store.upsert_device("d", description=5)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="blob .* must be bytes"):
        store.put_artifact(NB, "m", kind="mlp", manifest={}, blob="text")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="artifact name"):
        store.put_artifact(NB, "/abs", kind="mlp", manifest={}, blob=b"")
    with pytest.raises(InvalidInputError, match="manifest"):
        store.put_artifact(NB, "m", kind="mlp", manifest=None, blob=b"")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="artifact version"):
        store.get_artifact(NB, "m", 0)
    with pytest.raises(NotFoundError):
        store.get_device("d")  # nothing was created by the failed calls


# ---- artifacts ----------------------------------------------------------------------------------------
def test_artifact_versions_and_byte_exact_blobs(store: Store) -> None:
    blobs = [os.urandom(1 << 20) + b"\x00\x00end", b"", bytes(range(256)) * 3]
    refs = [
        store.put_artifact(NB, "device/pixel4/mlp", kind="mlp", manifest={"format_version": 1, "i": i}, blob=blob)
        for i, blob in enumerate(blobs)
    ]
    assert [r.version for r in refs] == [1, 2, 3]
    assert store.put_artifact(FB, "device/pixel4/mlp", kind="mlp", manifest={}, blob=b"x").version == 1
    assert store.put_artifact(NB, "other", kind="gbdt", manifest={}, blob=bytearray(b"y")).version == 1

    latest = store.get_artifact(NB, "device/pixel4/mlp")
    assert (latest.version, latest.blob, latest.kind) == (3, blobs[2], "mlp")
    assert latest.manifest == {"format_version": 1, "i": 2}
    assert latest.ref == refs[2]
    for ref, blob in zip(refs, blobs):
        got = store.get_artifact(NB, "device/pixel4/mlp", ref.version)
        assert got.blob == blob and type(got.blob) is bytes
        assert got.sha256 == ref.sha256

    with pytest.raises(NotFoundError, match=r"has no version 4; versions: 1, 2, 3"):
        store.get_artifact(NB, "device/pixel4/mlp", 4)
    with pytest.raises(NotFoundError, match=r"nasbench201/missing not found; artifacts in space 'nasbench201': "):
        store.get_artifact(NB, "missing")
    with pytest.raises(NotFoundError, match="no artifacts in space 'empty'"):
        store.get_artifact("empty", "missing")

    listed = store.list_artifacts()
    assert [(a.space, a.name, a.version) for a in listed] == [
        (FB, "device/pixel4/mlp", 1),
        (NB, "device/pixel4/mlp", 1),
        (NB, "device/pixel4/mlp", 2),
        (NB, "device/pixel4/mlp", 3),
        (NB, "other", 1),
    ]
    assert listed[1].size_bytes == len(blobs[0]) and listed[2].size_bytes == 0
    assert [(a.name, a.version) for a in store.list_artifacts(NB, latest_only=True)] == [
        ("device/pixel4/mlp", 3),
        ("other", 1),
    ]
    assert store.list_artifacts("empty") == []


# ---- sharing, lifecycle -------------------------------------------------------------------------------
def test_two_stores_see_each_others_commits(make_store: Callable[..., Store]) -> None:
    one, two = make_store(), make_store()
    one.upsert_device("shared", description="from one")
    assert two.get_device("shared").description == "from one"
    two.add_measurements("shared", NB, rows(("a", 1.0)), source="contribute", request_id="r")
    assert latencies(one, "shared", NB) == {"a": 1.0}
    assert one.add_measurements("shared", NB, rows(("a", 1.0)), source="contribute", request_id="r").duplicate_request
    ref = one.put_artifact(NB, "m", kind="mlp", manifest={}, blob=b"abc")
    assert two.get_artifact(NB, "m").ref == ref
    assert two.put_artifact(NB, "m", kind="mlp", manifest={}, blob=b"abcd").version == 2
    assert one.get_artifact(NB, "m").blob == b"abcd"
    # the same model stored again by the other replica (both trained it on an empty store) is one version
    assert one.put_artifact(NB, "m", kind="mlp", manifest={}, blob=b"abcd").version == 2
    assert one.put_artifact(NB, "m", kind="mlp", manifest={"seed": 1}, blob=b"abcd").version == 3
    assert [info.version for info in two.list_artifacts(NB)] == [1, 2, 3]


def test_reopen_keeps_data_and_close_is_final(make_store: Callable[..., Store]) -> None:
    with make_store() as first:
        first.upsert_device("dev")
        first.replace_measurements("dev", NB, rows(("a", 1.0)), source="register")
    with pytest.raises(FailedPreconditionError, match="closed"):
        first.get_device("dev")
    first.close()  # idempotent
    second = make_store()
    assert latencies(second, "dev", NB) == {"a": 1.0}
    assert "password" not in repr(second) and second.dialect in ("sqlite", "postgresql")


def test_timestamps_are_utc_and_recent(store: Store) -> None:
    before = time.time()
    device = store.upsert_device("dev")
    assert before - 5 <= device.created_at.timestamp() <= time.time() + 5
