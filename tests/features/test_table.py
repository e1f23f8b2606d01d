"""fusion.features.table: the canonical long table to one row per (series, window). Needs pandas (skipped without)."""

import numpy as np
import pytest

from fusion.errors import FeatureSpecError
from fusion.features.backends import extract
from fusion.features.spec import FeatureSpec
from fusion.features.table import features_table

pd = pytest.importorskip("pandas", reason="features_table needs pandas (absent on a bare GPU host)")


def _canonical(lengths: dict[str, int], seed: int = 0):
    rng = np.random.default_rng(seed)
    parts = [pd.DataFrame({"series_id": sid, "t": np.arange(n, dtype=np.int64),
                           "ax": rng.standard_normal(n), "ay": 5 + rng.standard_normal(n),
                           "label": f"L{sid}", "group": f"G{len(sid)}"})
             for sid, n in lengths.items()]
    return pd.concat(parts, ignore_index=True)


def test_features_table_matches_extract_per_series():
    lengths = {"s9": 40, "s1": 23, "s5": 40, "s10": 31}  # two share a length: batched together
    canon = _canonical(lengths)
    spec = FeatureSpec(10, 6, ("mean", "kurtosis"))
    table = features_table(canon, spec, ["ax", "ay"])
    assert list(table.columns) == ["series_id", "window", "label", "group", *spec.feature_names(["ax", "ay"])]
    assert table["series_id"].unique().tolist() == list(lengths)  # order of first appearance
    for sid, n in lengths.items():
        rows = table[table["series_id"] == sid]
        assert rows["window"].tolist() == list(range((n - 10) // 6 + 1))
        assert set(rows["label"]) == {f"L{sid}"} and set(rows["group"]) == {f"G{len(sid)}"}
        x = canon.loc[canon["series_id"] == sid, ["ax", "ay"]].to_numpy(np.float32).T[None]
        expected = extract(x, spec).reshape(-1, 4)
        np.testing.assert_array_equal(rows[spec.feature_names(["ax", "ay"])].to_numpy(), expected)
    assert (table.dtypes.iloc[4:] == np.float32).all()


def test_unsorted_rows_give_the_sorted_table():
    canon = _canonical({"a": 12, "b": 9})
    shuffled = canon.sample(frac=1.0, random_state=0).sort_values("t", kind="stable")  # series interleaved
    spec = FeatureSpec(4, 3, ("mean", "max"))
    got = features_table(shuffled, spec, ["ax"])
    want = features_table(canon, spec, ["ax"])
    assert set(got["series_id"]) == {"a", "b"}
    pd.testing.assert_frame_equal(got.sort_values(["series_id", "window"]).reset_index(drop=True),
                                  want.sort_values(["series_id", "window"]).reset_index(drop=True))


def test_features_table_without_label_or_group():
    canon = _canonical({"a": 12}).drop(columns=["label", "group"])
    table = features_table(canon, FeatureSpec(4, 4, ("max",)), ["ay"])
    assert list(table.columns) == ["series_id", "window", "ay__max"]
    np.testing.assert_allclose(table["ay__max"], canon["ay"].to_numpy(np.float32).reshape(3, 4).max(1))


def test_features_table_errors():
    canon = _canonical({"long": 20, "short": 7})
    with pytest.raises(FeatureSpecError, match="series 'short': series length 7 is shorter than window 8"):
        features_table(canon, FeatureSpec(8, 4), ["ax"])
    with pytest.raises(FeatureSpecError, match=r"lacks column\(s\) \['az'\]"):
        features_table(canon, FeatureSpec(4, 4), ["ax", "az"])
