"""The Predictor on real sample series: the same probabilities as training's predict_series, batching, bundles."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from fusion.errors import BundleIntegrityError, DataValidationError
from fusion.features import features_table
from fusion.model import predict_series
from fusion.predictor import Predictor
from fusion.serving.bundle import load_bundle, write_manifest

from .fixtures import CHANNELS, SPEC, instances_of


def test_predictions_equal_predict_series_of_training(model, canonical):
    ids = list(canonical["series_id"].unique()[:12])
    # different lengths, so that some instances share an extract call and some do not
    instances = [inst for i, sid in enumerate(ids) for inst in instances_of(canonical, [sid], length=[256, 300, 512][i % 3])]
    got = Predictor(model).predict(instances)
    sliced = pd.concat([canonical[canonical["series_id"] == inst["series_id"]].head(len(inst["channels"]["ax"]))
                        for inst in instances])
    ref = predict_series(model, features_table(sliced, SPEC, CHANNELS)).set_index("series_id")
    labels = model.config["labels"]
    for g in got:
        want = ref.loc[g["series_id"]]
        assert g["label"] == want["predicted"]
        np.testing.assert_allclose([g["probabilities"][lab] for lab in labels],
                                   want[[f"p_{lab}" for lab in labels]].to_numpy(float), atol=1e-6)


def test_a_batch_gives_what_single_requests_give(model, canonical):
    p = Predictor(model)
    instances = instances_of(canonical, list(canonical["series_id"].unique()[:8]), length=384)
    batched = p.predict(instances)
    single = [p.predict([inst])[0] for inst in instances]
    for a, b in zip(batched, single, strict=True):
        assert a["label"] == b["label"]
        np.testing.assert_allclose(list(a["probabilities"].values()), list(b["probabilities"].values()), atol=1e-6)


def test_series_id_and_numbers_are_validated(model):
    p = Predictor(model, max_instances=2)
    inst = p.example(256, "ok")
    with pytest.raises(DataValidationError, match=r"instances\[0\] \(series_id ''\): series_id must be a string of 1 to 256"):
        p.predict([{**inst, "series_id": ""}])
    with pytest.raises(DataValidationError, match="out of range"):
        p.predict([{**inst, "channels": {**inst["channels"], "ax": [10**400] * 256}}])
    with pytest.raises(DataValidationError, match="too many instances: 3 > 2"):
        p.predict([inst] * 3)


def test_load_bundle_checks_manifest_and_consistency(bundle_copy):
    b = load_bundle(bundle_copy)
    assert (b.name, b.version) == ("fusion-classifier", "1") and len(b.digest) == 64
    assert b.predictor().labels == json.loads((bundle_copy / "labels.json").read_text())
    # a consistent-looking but re-hashed edit is still caught: the files disagree with the model's own config
    (bundle_copy / "labels.json").write_text('["A", "B"]\n')
    write_manifest(bundle_copy, "fusion-classifier", "1", feature_spec_digest=SPEC.digest())
    with pytest.raises(BundleIntegrityError, match="labels.json disagrees with the config inside model.safetensors"):
        load_bundle(bundle_copy)
    (bundle_copy / "MANIFEST.json").write_text("{not json")
    with pytest.raises(BundleIntegrityError, match="MANIFEST.json is not valid JSON"):
        load_bundle(bundle_copy)
