"""The fused window-statistics kernel against the float64 definitions (interpreted on CPU, compiled on GPU)."""

import numpy as np
import pytest
import torch
import triton

from fusion.errors import FeatureSpecError
from fusion.features import FeatureSpec, parity_error, reference_extract
from fusion.kernels.window_stats import KERNEL_STATS, window_stats, window_stats_reference

# Largest parity_error allowed per input dtype. Half-precision inputs are exact in float32, so the
# kernel's float32 arithmetic is held to the float32 bound; float64 input accumulates in float64 and
# only the float32 output rounding remains.
TOLERANCE = {torch.float32: 1e-5, torch.float16: 1e-5, torch.bfloat16: 1e-5, torch.float64: 1e-6}


def _series(kind: str, shape: tuple[int, int, int], seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(shape)
    if kind == "dc-offset":
        return 1e4 + noise
    if kind == "constant":
        return np.full(shape, 3.25)
    if kind == "spikes":
        x = noise.copy()
        x[..., ::7] += 500.0
        return x
    if kind == "tiny-variance":
        return 1.0 + 1e-4 * noise
    return noise


CASES = {  # id: (signal, (n_series, n_channels, length), window, hop)
    "noise-w16-h5": ("noise", (2, 3, 50), 16, 5),
    "dc-offset-w32-h8": ("dc-offset", (1, 2, 75), 32, 8),
    "constant-w8-h8": ("constant", (1, 2, 40), 8, 8),
    "spikes-w21-h4": ("spikes", (1, 2, 61), 21, 4),
    "tiny-variance-w16-h3": ("tiny-variance", (1, 2, 47), 16, 3),
    "window-equals-length": ("noise", (2, 2, 33), 33, 1),
    "hop-over-window-odd-length": ("noise", (1, 3, 101), 10, 17),
    "multi-chunk-long-window": ("dc-offset", (1, 1, 9001), 4500, 4000),
}


@pytest.mark.parametrize("dtype", list(TOLERANCE), ids=lambda d: str(d).removeprefix("torch."))
@pytest.mark.parametrize("case", list(CASES))
def test_kernel_matches_definition(case, dtype):
    kind, shape, window, hop = CASES[case]
    x = torch.from_numpy(_series(kind, shape)).to(dtype)
    spec = FeatureSpec(window, hop)
    got = window_stats(x, spec)
    assert got.dtype == torch.float32
    assert got.shape == (shape[0], spec.n_windows(shape[2]), shape[1], len(KERNEL_STATS))
    assert parity_error(got, x, spec) <= TOLERANCE[dtype]


@pytest.mark.parametrize("case", ["dc-offset-w32-h8", "constant-w8-h8", "spikes-w21-h4"])
def test_torch_reference_matches_definition(case):
    kind, shape, window, hop = CASES[case]
    x = torch.from_numpy(_series(kind, shape)).float()
    spec = FeatureSpec(window, hop)
    assert parity_error(window_stats_reference(x, spec), x, spec) <= 1e-6


def test_stat_subset_follows_spec_order():
    x = torch.from_numpy(_series("noise", (2, 2, 40))).float()
    full = window_stats(x, FeatureSpec(8, 4))
    subset = window_stats(x, FeatureSpec(8, 4, ("kurtosis", "mean", "zero_crossing_rate")))
    idx = [KERNEL_STATS.index(s) for s in ("kurtosis", "mean", "zero_crossing_rate")]
    torch.testing.assert_close(subset, full[..., idx], rtol=0, atol=0)


def test_constant_windows_give_zero_spread_and_shape():
    x = torch.full((1, 1, 24), -7.5)
    spec = FeatureSpec(8, 8, ("std", "skew", "kurtosis", "zero_crossing_rate"))
    assert torch.count_nonzero(window_stats(x, spec)) == 0
    assert np.count_nonzero(reference_extract(x, spec)) == 0


@pytest.mark.parametrize(
    ("x", "match"),
    [
        (torch.zeros(2, 8), r"shape \(2, 8\)"),
        (torch.zeros(1, 1, 8, dtype=torch.int32), "got torch.int32"),
        (np.zeros((1, 1, 8), np.float32), "got ndarray"),
        (torch.zeros(1, 1, 3), "series length 3 is shorter than window 4"),
    ],
    ids=["2d", "int32", "numpy", "too-short"],
)
def test_launcher_rejects_bad_input(x, match):
    with pytest.raises(FeatureSpecError, match=match):
        window_stats(x, FeatureSpec(4, 2))


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA tensor is always accepted")
def test_cpu_tensor_needs_the_interpreter(monkeypatch):
    monkeypatch.setattr(triton.knobs.runtime, "interpret", False)
    with pytest.raises(FeatureSpecError, match="needs a CUDA tensor .* got device cpu"):
        window_stats(torch.zeros(1, 1, 8), FeatureSpec(4, 2))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("dtype", list(TOLERANCE), ids=lambda d: str(d).removeprefix("torch."))
def test_kernel_on_cuda(dtype):
    x = torch.from_numpy(_series("dc-offset", (64, 8, 2048), seed=1)).to(dtype)
    spec = FeatureSpec(256, 128)
    got = window_stats(x.cuda(), spec)
    assert got.is_cuda
    assert parity_error(got.cpu(), x, spec) <= TOLERANCE[dtype]
