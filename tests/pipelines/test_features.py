"""The features pipeline: its nodes on a tiny table, the pipeline on an in-memory catalog, and its lazy imports."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from fusion.errors import FeatureSpecError
from fusion.features.spec import FeatureSpec
from fusion.names import CLEAN, FEATURE_REPORT, FEATURES
from fusion.pipelines.features.nodes import compute_features, describe_features, make_spec
from fusion.pipelines.features.pipeline import create_pipeline
from fusion.pipelines.memory import run_in_memory

DATA = {"channels": ["x", "y"]}


def _clean() -> pd.DataFrame:
    return pd.DataFrame({"series_id": ["a"] * 9 + ["b"] * 5, "t": np.r_[0:9, 0:5].astype("int64"),
                         "x": np.arange(14, dtype="float32"), "y": np.ones(14, dtype="float32"),
                         "label": ["A"] * 9 + ["B"] * 5})


def test_make_spec_reads_parameters_and_ignores_the_backend():
    spec = make_spec({"window": 4, "hop": 2, "stats": ["mean"], "backend": "jax"}, DATA)
    assert spec == FeatureSpec(4, 2, ("mean",), ("x", "y"))
    with pytest.raises(FeatureSpecError, match=r"unknown features parameter\(s\) \['size'\]"):
        make_spec({"window": 4, "hop": 2, "size": 3}, DATA)


def test_compute_features_uses_the_chosen_backend():
    params = {"window": 4, "hop": 2, "stats": ["mean", "max"]}
    torch_table = compute_features(_clean(), {**params, "backend": "torch"}, DATA)
    jax_table = compute_features(_clean(), {**params, "backend": "jax"}, DATA)
    assert torch_table["series_id"].tolist() == ["a"] * 3 + ["b"]
    assert torch_table["x__mean"].tolist() == [1.5, 3.5, 5.5, 10.5]
    pd.testing.assert_frame_equal(torch_table, jax_table)
    with pytest.raises(FeatureSpecError, match="backend must be one of .* got 'numba'"):
        compute_features(_clean(), {**params, "backend": "numba"}, DATA)


def test_pipeline_reports_the_spec_digest_and_shape():
    params = {"window": 4, "hop": 4}
    out = run_in_memory(create_pipeline(), **{CLEAN: _clean(), "params__features": params, "params__data": DATA})
    spec = make_spec(params, DATA)
    assert out[FEATURE_REPORT] == {"feature_spec": spec.to_dict(), "feature_spec_digest": spec.digest(), "rows": 3,
                                   "series": 2, "n_features": 2 * len(spec.stats)}
    assert FEATURES not in out  # consumed by describe_features: not a free output
    assert describe_features(compute_features(_clean(), params, DATA), params, DATA) == out[FEATURE_REPORT]


def test_listing_the_pipeline_does_not_import_torch():
    """Kedro imports every pipeline to list it: torch loads only when `compute_features` runs."""
    code = ("import sys, fusion.pipelines.features.pipeline; "
            "print(sorted({'torch', 'jax', 'triton'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
