"""fusion.features.reference: the one float64 reference, and the parity measure that binds every backend to it."""

import numpy as np
import pytest
import torch

from fusion.features.reference import parity_error, reference_extract
from fusion.features.spec import STATS, FeatureSpec


def test_reference_runs_each_definition_window_by_window():
    x = np.array([[[1.0, 2.0, 4.0, 8.0, 16.0]]])  # one series, one channel, five samples
    spec = FeatureSpec(window=3, hop=2, stats=("mean", "max", "abs_energy"))
    np.testing.assert_array_equal(reference_extract(x, spec), [[[[7 / 3, 4.0, 21.0]], [[28 / 3, 16.0, 336.0]]]])


def test_reference_layout_is_series_window_channel_stat():
    x = np.random.default_rng(0).standard_normal((2, 3, 20))
    spec = FeatureSpec(6, 5, ("min", "std"))
    ref = reference_extract(x, spec)
    assert ref.shape == (2, 3, 3, 2) and ref.dtype == np.float64
    assert ref[1, 2, 0, 0] == x[1, 0, 10:16].min()
    assert ref[0, 1, 2, 1] == pytest.approx(x[0, 2, 5:11].std())


def test_reference_accepts_tensors_and_ignores_their_dtype():
    x = np.random.default_rng(1).standard_normal((1, 2, 12)).astype(np.float32)
    spec = FeatureSpec(4, 4)
    np.testing.assert_array_equal(reference_extract(torch.from_numpy(x), spec), reference_extract(x, spec))


def test_parity_error_is_relative_to_the_statistics_scale():
    x = 1e4 + np.random.default_rng(2).standard_normal((1, 1, 64))  # a DC offset of 1e4
    spec = FeatureSpec(64, 64, ("mean", "std"))
    ref = reference_extract(x, spec)
    assert parity_error(ref, x, spec) == 0.0
    off_mean, off_std = ref.copy(), ref.copy()
    off_mean[..., 0] += 1e-2  # 1e-2 on a level of 1e4: relative 5e-7
    off_std[..., 1] += 2e-2  # 2e-2 on a spread of ~1 (the range ~5, not the offset): ~3e-3
    assert parity_error(off_mean, x, spec) < 1e-6
    assert parity_error(off_std, x, spec, reference=ref) > 1e-3


@pytest.mark.parametrize("name", list(STATS))
def test_a_one_percent_error_in_any_statistic_is_caught(name):
    x = np.random.default_rng(3).standard_normal((1, 2, 40)) + 3.0
    spec = FeatureSpec(10, 5, (name,))
    ref = reference_extract(x, spec)
    assert parity_error(ref * 1.01 + 1e-2, x, spec, reference=ref) > 1e-5
