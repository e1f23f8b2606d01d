"""The golden cases of the default run's bundle are the training predictions of held-out series, and the bundle's
own predictor reproduces them."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from fusion.bundle.golden import compare_golden
from fusion.bundle.layout import GOLDEN_INPUTS, GOLDEN_OUTPUTS
from fusion.bundle.verify import load_bundle


@pytest.mark.slow
def test_golden_cases_are_the_training_predictions_of_held_out_series(exported_run):
    preds = pd.read_parquet(exported_run.project / "data/07_model_output/predictions.parquet").set_index("series_id")
    clean = pd.read_parquet(exported_run.project / "data/03_primary/clean.parquet")
    inputs = json.loads((exported_run.bundle / GOLDEN_INPUTS).read_text())
    outputs = json.loads((exported_run.bundle / GOLDEN_OUTPUTS).read_text())
    ids = [i["series_id"] for i in inputs["instances"]]
    assert ids == [p["series_id"] for p in outputs["predictions"]] == sorted(preds.index[preds["part"] == "test"])
    assert len(ids) == 28
    labels = json.loads((exported_run.bundle / "labels.json").read_text())
    for p in outputs["predictions"]:
        row = preds.loc[p["series_id"]]
        assert p["label"] == row["predicted"] and p["cached"] is False
        assert p["probabilities"] == {lab: float(row[f"p_{lab}"]) for lab in labels}  # exactly, not recomputed
    first = clean[clean["series_id"] == ids[0]]
    for ch, values in inputs["instances"][0]["channels"].items():
        np.testing.assert_array_equal(np.float32(values), first[ch].to_numpy(np.float32))


@pytest.mark.slow
def test_the_bundles_predictor_reproduces_the_golden_outputs(exported_run):
    bundle = load_bundle(exported_run.bundle)
    got = bundle.predictor(max_instances=100).predict(bundle.json(GOLDEN_INPUTS)["instances"])
    expected = bundle.json(GOLDEN_OUTPUTS)
    assert compare_golden(expected, {"predictions": got}, atol=1e-6) == []
    got[3]["probabilities"][got[3]["label"]] -= 2e-6
    assert compare_golden(expected, {"predictions": got}, atol=1e-6)[0].startswith(f"series {got[3]['series_id']!r}: p[")
