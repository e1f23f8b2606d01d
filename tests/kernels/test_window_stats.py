"""The fused window-statistics kernel, and the triton backend of `extract`, against the one float64 reference.

Interpreted on CPU (TRITON_INTERPRET=1, set by conftest.py), compiled on a GPU.
"""

import numpy as np
import pytest
import torch
import triton

from fusion.errors import FeatureSpecError
from fusion.features.backends import extract, warmup
from fusion.features.reference import parity_error, reference_extract
from fusion.features.spec import DEFAULT_STATS, STATS, FeatureSpec, Stat, register_stat
from fusion.kernels.window_stats import KERNEL_STATS, kernel_slots, window_stats

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


def test_every_slot_holds_a_registered_statistic():
    assert set(KERNEL_STATS) == set(DEFAULT_STATS) <= set(STATS)  # the kernel computes every built-in statistic
    assert kernel_slots(FeatureSpec(8, 4, ("kurtosis", "mean"))) == [7, 0]


@pytest.fixture
def half_range():
    """A statistic registered for one test, through the public registry (no Triton slot), and removed after it."""
    stat = register_stat(Stat("half_range", "(max - min) / 2", lambda w: w.range / 2,
                              lambda x: float(np.ptp(x)) / 2, lambda absmax, rng, n: rng))
    yield stat
    del STATS[stat.name]


def test_a_statistic_without_a_kernel_slot_is_refused_by_name(half_range):
    x = torch.from_numpy(_series("noise", (1, 2, 40))).float()
    spec = FeatureSpec(8, 4, ("mean", half_range.name))
    assert parity_error(extract(x, spec, backend="torch"), x, spec) <= 1e-5  # registered: torch computes it
    with pytest.raises(FeatureSpecError, match=r"stat\(s\) \['half_range'\] have no Triton implementation"):
        extract(x, spec, backend="triton")
    with pytest.raises(FeatureSpecError, match=r"\['half_range'\] have no Triton implementation"):
        window_stats(x, spec)


def _random_case(seed: int) -> tuple[torch.Tensor, FeatureSpec]:
    """Random shapes, windows and hops, values in ±1e3 on one of four DC offsets."""
    rng = np.random.default_rng(seed)
    n_series, n_channels, window, hop, extra = (int(v) for v in rng.integers([1, 1, 2, 1, 0], [3, 4, 41, 31, 31]))
    offset = [0.0, 1.0, -50.0, 1e4][seed % 4]
    x = (offset + rng.uniform(-1e3, 1e3, (n_series, n_channels, window + extra))).astype(np.float32)
    return torch.from_numpy(x), FeatureSpec(window, hop)


@pytest.mark.parametrize("seed", range(10))
def test_triton_backend_matches_definitions_on_random_shapes(seed):
    x, spec = _random_case(seed)
    got = extract(x.cuda() if torch.cuda.is_available() else x, spec, backend="triton")
    assert parity_error(got.cpu(), x, spec) <= 1e-5


def test_warmup_runs_the_kernel_once():
    device = "cuda" if torch.cuda.is_available() else "cpu"  # cpu: interpreted
    assert warmup(FeatureSpec(8, 4, ("mean",)), 2, backend="triton", device=device) == "triton"


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
