"""The Predictor on real sample series: the same probabilities as training's predict_series, batching, bundles."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fusion.errors import DataValidationError
from fusion.features.table import features_table
from fusion.model.network import predict_series
from fusion.inference.predictor import Predictor, parse_body

from tests.support.models import CHANNELS, SPEC, instances_of


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


_SAMPLE = st.one_of(st.floats(allow_nan=False, allow_infinity=False, width=64), st.integers(-2**70, 2**70),
                    st.booleans(), st.text(max_size=3), st.none(), st.lists(st.floats(), max_size=2))
_SAMPLES = st.one_of(st.lists(st.floats(-1e3, 1e3), min_size=0, max_size=40),
                     st.lists(_SAMPLE, min_size=1, max_size=40), _SAMPLE)
_NAMES = st.sampled_from([*CHANNELS, "bz"])
_INSTANCE = st.one_of(
    st.fixed_dictionaries({"series_id": st.one_of(st.text(max_size=4), st.integers(), st.none()),
                           "channels": st.one_of(st.dictionaries(_NAMES, _SAMPLES, max_size=8), _SAMPLE)},
                          optional={"extra": st.integers()}),
    _SAMPLE)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.one_of(st.fixed_dictionaries({"instances": st.lists(_INSTANCE, max_size=3)}),
                      st.dictionaries(st.sampled_from(["instances", "other"]), st.lists(_INSTANCE, max_size=2)),
                      st.lists(st.integers(), max_size=2)))
def test_raw_body_and_parsed_json_are_judged_alike(model, body):
    "validate_json (msgspec, the server's way in) accepts exactly what validate accepts, with the same message."
    p = Predictor(model, max_instances=2)
    raw = json.dumps(body).encode()  # orjson.dumps refuses integers beyond 64 bits
    outcomes = []
    for way in (lambda: p.validate(parse_body(raw)), lambda: p.validate_json(raw)):
        try:
            outcomes.append([(s.series_id, s.x.tolist()) for s in way()])
        except DataValidationError as err:
            outcomes.append(str(err))
    assert outcomes[0] == outcomes[1]
