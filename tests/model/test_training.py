"""The training loop and the node around it: seeded, early-stopped on series accuracy, the scorer using the one
series-probability rule."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from fusion.errors import DataValidationError
from fusion.model.network import WindowMLP
from fusion.model.training import fit_network, series_accuracy
from fusion.pipelines.train.nodes import fit_model, predict_split, split_groups

ARGS = {"hidden": [8], "dropout": 0.0, "learning_rate": 0.05, "weight_decay": 0.0, "max_epochs": 40, "patience": 10,
        "seed": 3}


def _windows(n_series: int = 8, per: int = 10, shift: float = 3.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    "Windows of `n_series` series (half per class) whose class shifts their mean; each window's series."
    gen = torch.Generator().manual_seed(0)
    truth = torch.arange(n_series) % 2
    series = torch.arange(n_series).repeat_interleave(per)
    return torch.randn(n_series * per, 3, generator=gen) + shift * truth[series, None].float(), series, truth


def test_training_is_seeded_and_learns_separable_series():
    x, series, truth = _windows()
    score = series_accuracy(x, series, truth)
    state, epoch = fit_network(x, truth[series], 2, score, **ARGS)
    again, _ = fit_network(x, truth[series], 2, score, **ARGS)
    assert all(torch.equal(state[k], again[k]) for k in state)
    net = WindowMLP(3, 2, [8])
    net.load_state_dict(state)
    assert score(net) == 1.0 and 1 <= epoch <= ARGS["max_epochs"]
    other, _ = fit_network(x, truth[series], 2, score, **{**ARGS, "seed": 4})
    assert not all(torch.equal(state[k], other[k]) for k in state)


def test_training_stops_patience_epochs_after_the_best_one():
    x, series, truth = _windows()
    scores = iter([0.1, 0.5, 0.4, 0.5, 0.3, 0.2, 0.9])  # best at epoch 2; epochs 3-6 are no better
    seen = []
    _, epoch = fit_network(x, truth[series], 2, lambda net: seen.append(1) or next(scores), **{**ARGS, "patience": 4})
    assert epoch == 2 and len(seen) == 6


def test_series_accuracy_judges_series_by_their_mean_window_probabilities():
    net = WindowMLP(2, 2, [])
    with torch.no_grad():  # logits [x0 - x1, x1 - x0]
        net.net[0].weight.copy_(torch.tensor([[1.0, -1.0], [-1.0, 1.0]]))
        net.net[0].bias.zero_()
    x = torch.tensor([[4.0, 0.0], [0.0, 0.2], [0.0, 0.2]])  # one confident window for class 0, two mild for class 1
    assert series_accuracy(x, torch.tensor([0, 0, 0]), torch.tensor([0]))(net) == 1.0  # a mean, not a majority vote


def _table() -> pd.DataFrame:
    rng, rows = np.random.default_rng(0), []
    for g in range(5):
        for s, lab in enumerate(["lo", "hi"]):
            for w in range(6):
                rows.append({"series_id": f"g{g}s{s}", "window": w, "label": lab, "group": str(g),
                             "x__mean": rng.normal(0 if lab == "lo" else 3), "x__std": rng.normal(1)})
    return pd.DataFrame(rows)


def test_the_node_trains_through_the_loop_and_records_how():
    table, params = _table(), {**ARGS, "test_groups": 1, "val_groups": 1, "threads": 1}
    split = split_groups(table, params)
    report = {"feature_spec": {"window": 4, "hop": 2}, "feature_spec_digest": "0" * 64}
    model = fit_model(table, split, params, report)
    assert model.config["feature_names"] == ["x__mean", "x__std"] and model.config["labels"] == ["hi", "lo"]
    assert model.config["seed"] == 3 and model.config["epochs"] >= 1
    preds = predict_split(model, table, split)
    assert (preds.loc[preds["part"] == "test", "predicted"] == preds.loc[preds["part"] == "test", "label"]).all()
    with pytest.raises(DataValidationError, match=r"empty training or validation part: 36 / 0 windows"):
        fit_model(table, {**split, "val": []}, params, report)
