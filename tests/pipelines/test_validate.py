"""Validation: every bad row of the canonical table lands in quarantine with its reason and source row.

Rows in = clean + quarantined, always; only a table with nothing valid left is an error.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # profile_plot draws a figure; no display in tests

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from fusion.names import CANONICAL
from fusion.pipelines.memory import run_in_memory
from fusion.errors import DataValidationError  # noqa: E402
from fusion.pipelines.ingest.nodes import to_canonical  # noqa: E402
from fusion.pipelines.validate.nodes import report_validation, split_valid  # noqa: E402
from fusion.pipelines.validate.pipeline import create_pipeline as validate_pipeline  # noqa: E402

WINDOW = 128  # features.window of conf/base; every small_watch series has 300 samples
LABELS = ["ABD", "ER", "FEL", "IR", "PEN", "ROW", "TRAP"]  # the 7 classes of the watch data
# small_watch: 6 series of 300 rows, so rows 300·k … 300·k + 299 are series k with t = 0 … 299


@pytest.fixture
def canonical(small_watch, data_params) -> pd.DataFrame:
    return to_canonical(small_watch, data_params)


@pytest.fixture
def known_labels(data_params) -> dict:
    "The `data` parameters with the known labels listed (so unknown labels are quarantined)."
    return {**data_params, "labels": LABELS}


def validate(canonical: pd.DataFrame, data: dict, window: int = WINDOW) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    clean, quarantine = split_valid(canonical, data, window)
    return clean, quarantine, report_validation(canonical, clean, quarantine)


# --- one defect at a time ---------------------------------------------------------------------------

DEFECTS = [  # (id, row, column, value, reason)
    ("nan", 10, "ay", np.nan, "non_finite_value"),
    ("pos-inf", 310, "wz", np.inf, "non_finite_value"),
    ("neg-inf", 620, "ax", -np.inf, "non_finite_value"),
    ("duplicate-t", 905, "t", 4, "duplicate_t"),  # row 904 has t = 4 in the same series
    ("non-monotonic-t", 1250, "t", -1, "non_monotonic_t"),  # after t = 49, before t = 51: no duplicate
    ("missing-label", 1500, "label", pd.NA, "missing_label"),
    ("unknown-label", 1790, "label", "JUMP", "unknown_label"),
    ("missing-series-id", 40, "series_id", pd.NA, "missing_series_id"),
    ("missing-t", 41, "t", pd.NA, "missing_t"),
]


@pytest.mark.parametrize(("row", "column", "value", "reason"), [d[1:] for d in DEFECTS], ids=[d[0] for d in DEFECTS])
def test_one_bad_row_is_quarantined_with_its_reason(canonical, known_labels, row, column, value, reason):
    original = canonical.loc[row].copy()
    canonical.loc[row, column] = value
    clean, quarantine, report = validate(canonical, known_labels)
    assert quarantine[["source_row", "reason"]].to_dict("records") == [{"source_row": row, "reason": reason}]
    kept = [c for c in canonical.columns if c != column]  # the quarantined row keeps its values
    assert quarantine.loc[0, kept].tolist() == original[kept].tolist()
    assert (report["rows_in"], report["rows_clean"], report["rows_quarantined"]) == (1800, 1799, 1)
    assert report["reasons"] == {reason: 1}
    assert len(clean) == 1799 and report["series_clean"] == 6


def test_without_known_labels_any_label_is_accepted(canonical, data_params):
    canonical.loc[1790, "label"] = "JUMP"
    clean, quarantine, report = validate(canonical, data_params)
    assert len(quarantine) == 0 and len(clean) == 1800
    assert report["series_per_class"]["JUMP"] == 1


def test_series_shorter_than_the_window_is_quarantined_whole(small_watch, data_params):
    last = small_watch["series_id"].iloc[-1]
    cut = small_watch[(small_watch["series_id"] != last) | (small_watch["t"] < WINDOW - 1)].reset_index(drop=True)
    clean, quarantine, report = validate(to_canonical(cut, data_params), data_params)
    assert quarantine["source_row"].tolist() == list(range(1500, 1500 + WINDOW - 1))
    assert set(quarantine["reason"]) == {"series_too_short"}
    assert set(quarantine["series_id"]) == {str(last)}
    assert report["reasons"] == {"series_too_short": WINDOW - 1}
    assert (report["series_in"], report["series_clean"], report["rows_clean"]) == (6, 5, 1500)


def test_series_left_too_short_by_its_bad_rows_is_quarantined_whole(canonical, data_params):
    canonical.loc[[600, 601, 650], "ax"] = np.nan  # series 2 keeps 297 good rows, fewer than the window
    clean, quarantine, report = validate(canonical, data_params, window=298)
    reasons = quarantine.set_index("source_row")["reason"]
    assert reasons.index.tolist() == list(range(600, 900))
    assert reasons.loc[[600, 601, 650]].tolist() == ["non_finite_value"] * 3
    assert report["reasons"] == {"non_finite_value": 3, "series_too_short": 297}
    assert len(clean) + len(quarantine) == 1800


def test_all_defects_together_are_counted_by_reason(canonical, known_labels):
    for _, row, column, value, _ in DEFECTS:
        canonical.loc[row, column] = value
    canonical.loc[1100, ["ay", "label"]] = [np.nan, pd.NA]  # one row, two reasons
    clean, quarantine, report = validate(canonical, known_labels)
    expected = {row: reason for _, row, _, _, reason in DEFECTS} | {1100: "missing_label,non_finite_value"}
    assert quarantine.set_index("source_row")["reason"].to_dict() == expected
    assert report["reasons"] == {"non_finite_value": 4, "duplicate_t": 1, "non_monotonic_t": 1, "missing_label": 2,
                                 "unknown_label": 1, "missing_series_id": 1, "missing_t": 1}
    assert report["rows_in"] == report["rows_clean"] + report["rows_quarantined"] == 1800
    assert report["rows_quarantined"] == len(DEFECTS) + 1


# --- nothing valid left -------------------------------------------------------------------------------

def _no_labels(c: pd.DataFrame) -> None:
    c["label"] = pd.NA


def _duplicated_t(c: pd.DataFrame) -> None:
    c["t"] = 0


@pytest.mark.parametrize(
    ("spoil", "window", "match"),
    [
        (_no_labels, WINDOW, r"\{'missing_label': 1800\}"),
        (lambda c: None, 301, r"\{'series_too_short': 1800\}"),
        (_duplicated_t, 2, r"\{'duplicate_t': 1794, 'series_too_short': 6\}"),
    ],
    ids=["no-labels", "window-too-long", "all-duplicates"],
)
def test_nothing_valid_left_is_an_error(canonical, data_params, spoil, window, match):
    spoil(canonical)
    with pytest.raises(DataValidationError, match=r"^nothing valid remains: all 1800 rows were quarantined; reasons "
                                                  + match + "$"):
        validate(canonical, data_params, window)


def test_validate_pipeline_fails_when_nothing_is_left(canonical, data_params):
    _no_labels(canonical)
    with pytest.raises(DataValidationError, match=r"^nothing valid remains: all 1800 rows were quarantined"):
        run_in_memory(validate_pipeline(), **{CANONICAL: canonical, "params__data": data_params,
                                              "params__features.window": WINDOW})


def test_validate_pipeline_profiles_the_quarantine(canonical, data_params):
    canonical.loc[[3, 303], "az"] = np.inf
    out = run_in_memory(validate_pipeline(), **{CANONICAL: canonical, "params__data": data_params,
                                                "params__features.window": WINDOW})
    plt.close(out["profile_plot"])
    md = out["profile_markdown"]
    assert "Rows in 1800, clean 1798, quarantined 2; series in 6, clean 6." in md
    assert "- `non_finite_value`: 2 rows" in md


# --- property: nothing is lost, the clean table is clean ---------------------------------------------

PROP_DATA = {"series_col": "sid", "time_col": "t", "channels": ["x", "y"], "label_col": "label"}


@st.composite
def raw_tables(draw) -> tuple[pd.DataFrame, set[int], int]:
    "A small raw table with NaNs, duplicate and out-of-order times at random rows; the NaN rows; a window."
    lengths = draw(st.lists(st.integers(1, 10), min_size=1, max_size=4))
    sid = np.repeat(np.arange(len(lengths)), lengths)
    t = np.concatenate([np.arange(n) for n in lengths])
    n = len(t)
    rows = st.integers(0, n - 1)
    for i in draw(st.sets(rows, max_size=3)):  # a duplicate of the row before (or, at a series start, disorder)
        t[i] = t[i - 1] if i else 5
    for i, j in draw(st.lists(st.tuples(rows, rows), max_size=2)):
        t[i], t[j] = t[j], t[i]
    values = np.arange(2 * n, dtype=np.float64).reshape(n, 2)
    nan_rows = draw(st.sets(rows, max_size=4))
    for i in nan_rows:
        values[i, draw(st.integers(0, 1))] = np.nan
    raw = pd.DataFrame({"sid": sid, "t": t, "x": values[:, 0], "y": values[:, 1], "label": np.where(sid % 2, "a", "b")})
    return raw, nan_rows, draw(st.integers(1, 4))


@settings(max_examples=30, deadline=None)
@given(raw_tables())
def test_rows_in_equal_clean_plus_quarantine(case):
    raw, nan_rows, window = case
    canonical = to_canonical(raw, PROP_DATA)
    clean, quarantine = split_valid(canonical, PROP_DATA, window)
    assert len(clean) + len(quarantine) == len(raw)
    assert quarantine["source_row"].is_unique
    assert not clean[["x", "y"]].isna().any().any()
    assert (clean.groupby("series_id")["t"].diff().dropna() > 0).all()
    assert (clean.groupby("series_id").size() >= window).all()
    reasons = quarantine.set_index("source_row")["reason"]
    assert all("non_finite_value" in reasons.get(i, "") for i in nan_rows)
    kept = canonical.drop(index=quarantine["source_row"]).astype({"t": "int64"})
    expected = kept.sort_values(["series_id", "t"], kind="stable").reset_index(drop=True)
    pd.testing.assert_frame_equal(clean, expected)  # the clean rows are the input rows, unchanged
