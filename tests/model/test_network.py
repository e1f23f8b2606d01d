"""The one rule that turns window probabilities into series probabilities, and `predict_series` built on it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from fusion.errors import DataValidationError
from fusion.model.network import TrainedModel, WindowMLP, load_model, predict_series, save_model, series_probabilities


def _model(n_features: int = 3, labels=("a", "b", "c")) -> TrainedModel:
    torch.manual_seed(0)
    names = [f"x__s{i}" for i in range(n_features)]
    return TrainedModel({"feature_names": names, "labels": list(labels), "hidden": [5]},
                        WindowMLP(n_features, len(labels), [5]).state_dict())


def test_both_layouts_give_each_series_the_mean_of_its_windows():
    probs = torch.softmax(torch.randn(12, 4, generator=torch.Generator().manual_seed(1)), dim=-1)
    series = torch.tensor([2, 0, 1, 1, 0, 2, 2, 0, 1, 0, 1, 2])  # windows of three series, interleaved
    want = torch.stack([probs[series == s].mean(0) for s in range(3)])
    torch.testing.assert_close(series_probabilities(probs, series), want, rtol=0, atol=1e-7)
    block = torch.stack([probs[series == s] for s in range(3)])  # [3 series, 4 windows, 4 labels]
    torch.testing.assert_close(series_probabilities(block), want, rtol=0, atol=1e-7)
    assert series_probabilities(probs.double(), series).dtype == torch.float64


def test_wrong_shapes_and_missing_series_are_refused():
    probs = torch.full((3, 2), 0.5)
    with pytest.raises(DataValidationError, match=r"without series must be \[n_series, n_windows, n_labels\], got shape \(3, 2\)"):
        series_probabilities(probs)
    with pytest.raises(DataValidationError, match=r"window_probs \(3, 2\) with series \(2,\)"):
        series_probabilities(probs, torch.tensor([0, 1]))
    with pytest.raises(DataValidationError, match=r"must cover 0 … 3; none for \[1, 2\]"):
        series_probabilities(probs, torch.tensor([0, 3, 3]))


def test_predict_series_equals_the_mean_of_window_probabilities_per_series_in_order_of_appearance(tmp_path):
    model, rng = _model(), np.random.default_rng(2)
    table = pd.DataFrame(rng.normal(size=(40, 3)).astype(np.float32), columns=model.config["feature_names"])
    table.insert(0, "series_id", rng.choice(["s3", "s1", "s2", "s0"], size=40))
    got = predict_series(model, table)
    per_window = pd.DataFrame(model.predict_windows(table[model.config["feature_names"]].to_numpy()),
                              columns=["p_a", "p_b", "p_c"]).assign(series_id=table["series_id"])
    want = per_window.groupby("series_id", sort=False).mean()  # the rule, as pandas writes it
    assert list(got.columns) == ["series_id", "p_a", "p_b", "p_c", "predicted"]
    assert list(got["series_id"]) == list(dict.fromkeys(table["series_id"]))
    np.testing.assert_allclose(got[["p_a", "p_b", "p_c"]].to_numpy(), want.loc[got["series_id"]].to_numpy(), atol=1e-12)
    assert list(got["predicted"]) == [["a", "b", "c"][i] for i in want.loc[got["series_id"]].to_numpy().argmax(1)]
    save_model(model, tmp_path / "m.safetensors")
    pd.testing.assert_frame_equal(predict_series(load_model(tmp_path / "m.safetensors"), table), got)
