"""Reading `arch,latency_ms` measurement CSVs: every bad row is named, nothing partial is returned."""

from __future__ import annotations

import pytest

from nas_latency.errors import InvalidInputError
from nas_latency.measurements import measurements_from_mapping, parse_measurements_csv
from search_spaces import get_space

SPACE = get_space("nasbench201")
ARCHS = SPACE.sample(5, seed=11)


def csv_text(rows: list[tuple[str, str]]) -> str:
    return "arch,latency_ms\n" + "".join(f"{a},{v}\n" for a, v in rows)


def test_valid_rows_in_order() -> None:
    measured = parse_measurements_csv(SPACE, csv_text([(a, str(i + 1.5)) for i, a in enumerate(ARCHS)]), where="m.csv")
    assert measured.archs == tuple(ARCHS)
    assert measured.latency_ms == (1.5, 2.5, 3.5, 4.5, 5.5)


def test_blank_lines_are_ignored_and_rows_keep_their_numbers() -> None:
    text = "arch,latency_ms\n\n" + f"{ARCHS[0]},1\n{ARCHS[1]},2\n\n{ARCHS[2]},-3\n"
    with pytest.raises(InvalidInputError, match=r"m.csv: row 6: latency_ms must be a finite number > 0, got '-3'"):
        parse_measurements_csv(SPACE, text, where="m.csv")


@pytest.mark.parametrize(
    "value, needle",
    [("nan", "finite number > 0"), ("0", "finite number > 0"), ("-1", "finite number > 0"), ("inf", "finite"),
     ("fast", "is not a number"), ("", "is not a number"), ("7_0", "is not a number"), ("\u0667", "is not a number"),
     ("0x1p3", "is not a number"), ("1e-300", "outside the plausible range"), ("2e9", "outside the plausible range")],
)
def test_bad_latency_names_the_row(value: str, needle: str) -> None:
    rows = [(ARCHS[0], "1"), (ARCHS[1], value), (ARCHS[2], "3")]
    with pytest.raises(InvalidInputError, match=r"row 3: .*" + needle):
        parse_measurements_csv(SPACE, csv_text(rows), where="m.csv")


def test_unknown_arch_names_the_row_and_the_problem() -> None:
    rows = [(ARCHS[0], "1"), ("|conv~0|+|", "2"), (ARCHS[2], "3")]
    with pytest.raises(InvalidInputError, match=r"m.csv: row 3: .*nasbench201"):
        parse_measurements_csv(SPACE, csv_text(rows), where="m.csv")


def test_duplicates_name_both_rows() -> None:
    rows = [(ARCHS[0], "1"), (ARCHS[1], "2"), (ARCHS[0], "3")]
    with pytest.raises(InvalidInputError, match=r"row 4: .* measured twice \(also row 2\)"):
        parse_measurements_csv(SPACE, csv_text(rows), where="m.csv")


@pytest.mark.parametrize(
    "text, needle",
    [("", "empty file"), ("arch,ms\n", "header must be `arch,latency_ms`"),
     (f"arch,latency_ms\n{ARCHS[0]},1,extra\n", "expected 2 columns"),
     (f"arch,latency_ms\n{ARCHS[0]},1\n{ARCHS[1]},2\n", "2 measurements; at least 3")],
)
def test_malformed_files(text: str, needle: str) -> None:
    with pytest.raises(InvalidInputError, match=needle):
        parse_measurements_csv(SPACE, text, where="m.csv")


def test_mapping_form_validates_the_same_way() -> None:
    with pytest.raises(InvalidInputError, match=r"signature: row 2: latency_ms"):
        measurements_from_mapping(SPACE, {ARCHS[0]: 1.0, ARCHS[1]: float("nan"), ARCHS[2]: 2.0})
    assert len(measurements_from_mapping(SPACE, {a: 1.0 + i for i, a in enumerate(ARCHS)}).archs) == 5


def test_spreadsheet_exports_are_read() -> None:
    """A byte-order mark, CRLF line ends, spaces around fields and quoted fields, as spreadsheets write them."""
    text = "\ufeffarch, latency_ms\r\n" + "".join(f'"{a}", {v} \r\n' for a, v in zip(ARCHS[:3], ("1.5", "+2", "3e0")))
    measured = parse_measurements_csv(SPACE, text, where="m.csv")
    assert measured.archs == tuple(ARCHS[:3]) and measured.latency_ms == (1.5, 2.0, 3.0)


def test_numbers_from_a_mapping_are_range_checked_too() -> None:
    with pytest.raises(InvalidInputError, match="row 2: latency_ms 1e-09 is outside the plausible range"):
        measurements_from_mapping(SPACE, {ARCHS[0]: 1.0, ARCHS[1]: 1e-9, ARCHS[2]: 2.0}, where="sig")
