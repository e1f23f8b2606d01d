"""fusion.features.moments: the shared per-window quantities, on any array namespace, against the definitions."""

import numpy as np
import pytest
import torch

from fusion.features.moments import WindowMoments
from fusion.features.spec import STATS


def _windows(kind: str) -> np.ndarray:
    rng = np.random.default_rng(5)
    noise = rng.standard_normal((3, 32))
    return {"noise": noise, "dc-offset": 1e4 + noise, "constant": np.full((3, 32), -2.5)}[kind]


@pytest.mark.parametrize("kind", ["noise", "dc-offset", "constant"])
def test_every_statistic_in_float64_meets_its_definition(kind):
    w = _windows(kind)
    moments = WindowMoments(w, np)
    for name, stat in STATS.items():
        expected = [stat.definition(row) for row in w]
        np.testing.assert_allclose(stat.compute(moments), expected, rtol=1e-9, atol=1e-9, err_msg=name)


def test_float32_std_survives_a_dc_offset_that_breaks_the_one_pass_formula():
    x = torch.from_numpy(_windows("dc-offset")).float()
    exact = x.double().std(-1, correction=0)
    shifted = WindowMoments(x, torch).std.double()
    naive = (x.pow(2).mean(-1) - x.mean(-1).pow(2)).clamp(min=0).sqrt().double()
    assert ((shifted - exact).abs() / exact).max() < 1e-5
    assert ((naive - exact).abs() / exact).max() > 1e-3


def test_quantities_are_computed_once_and_only_when_asked():
    moments = WindowMoments(np.arange(8.0).reshape(2, 4), np)
    assert "_powers" not in moments.__dict__
    assert moments.mean.tolist() == [1.5, 5.5]
    assert "_powers" not in moments.__dict__  # the mean needs no second pass
    first = moments.std
    assert moments.std is first and "_powers" in moments.__dict__


def test_flat_windows_give_zero_not_nan():
    moments = WindowMoments(torch.full((2, 16), 7.0), torch)
    assert moments.flat.all()
    for value in (moments.std, moments.standardized_moment(3), moments.standardized_moment(4, minus=3.0),
                  moments.zero_crossing_rate):
        assert torch.count_nonzero(value) == 0 and not value.isnan().any()
