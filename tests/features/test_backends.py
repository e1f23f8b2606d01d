"""fusion.features.backends: extract and warmup on torch (eager and compiled) and JAX, against the float64 reference.

The Triton backend's tests are the kernel's (tests/kernels/test_window_stats.py). This file also runs on a bare GPU
host (torch, Triton, JAX and pytest only; see benchmarks/gpu_check.sh): without hypothesis the property test runs on
seeded random cases drawn from the same ranges.
"""

import subprocess
import sys

import numpy as np
import pytest
import torch

try:
    from hypothesis import given, settings
    from hypothesis import strategies as st
    from hypothesis.extra import numpy as hnp
except ImportError:  # a bare GPU host: the properties run on seeded random cases instead
    given = None

from fusion.errors import FeatureSpecError
from fusion.features.backends import DISPATCHER, CompileCache, Dispatcher, extract, warmup
from fusion.features.reference import parity_error, reference_extract
from fusion.features.spec import STATS, FeatureSpec, Stat, register_stat

CPU_BACKENDS = ["torch", "jax"]
TOL = 1e-5  # largest parity_error any backend may show


def test_importing_the_backends_loads_neither_jax_nor_triton():
    code = "import sys, fusion.features.backends; print(sorted({'jax', 'triton', 'pandas'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --- extract: errors and types -------------------------------------------------------------------

def test_extract_error_messages():
    x = np.zeros((1, 2, 10), np.float32)
    with pytest.raises(FeatureSpecError, match="backend must be one of .* got 'cuda'"):
        extract(x, FeatureSpec(4, 2), backend="cuda")
    with pytest.raises(FeatureSpecError, match="series length 10 is shorter than window 11"):
        extract(x, FeatureSpec(11, 2))
    with pytest.raises(FeatureSpecError, match=r"got shape \(2, 10\)"):
        extract(x[0], FeatureSpec(4, 2))
    with pytest.raises(FeatureSpecError, match="x has 2 channels, spec.channels has 3"):
        extract(x, FeatureSpec(4, 2, channels=("a", "b", "c")))
    with pytest.raises(FeatureSpecError, match="got list"):
        extract([[[0.0] * 10]], FeatureSpec(4, 2))


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_extract_keeps_the_array_type(backend):
    x = np.random.default_rng(1).standard_normal((2, 3, 20))
    spec = FeatureSpec(6, 4, ("mean", "abs_energy"))
    out_np = extract(x, spec, backend=backend)  # float64 numpy in
    out_t = extract(torch.from_numpy(x).float(), spec, backend=backend)
    assert isinstance(out_np, np.ndarray) and out_np.dtype == np.float32 and out_np.shape == (2, 4, 3, 2)
    assert isinstance(out_t, torch.Tensor) and out_t.dtype == torch.float32
    assert parity_error(out_np, x, spec) <= TOL


def test_read_only_and_integer_input_is_accepted():
    x = np.arange(40, dtype=np.int64).reshape(1, 2, 20)
    ro = x.astype(np.float32)
    ro.flags.writeable = False  # as pandas hands out
    spec = FeatureSpec(5, 5, ("mean",))
    np.testing.assert_array_equal(extract(ro, spec), extract(torch.from_numpy(x), spec).numpy())


# --- numerics: every CPU backend against the definitions -----------------------------------------

def _adversarial(kind: str, shape: tuple[int, int, int]) -> np.ndarray:
    rng = np.random.default_rng(7)
    noise = rng.standard_normal(shape)
    x = {
        "noise": noise,
        "constant": np.full(shape, -2.5),
        "dc-offset-1e4": 1e4 + noise,
        "spikes": noise + 1e3 * (rng.random(shape) < 0.02),
        "tiny-variance": 3.0 + 1e-5 * noise,
        "steps": np.repeat(rng.integers(-3, 3, (*shape[:2], shape[2] // 5 + 1)), 5, -1)[..., : shape[2]] * 1.0,
    }[kind]
    return x.astype(np.float32)


KINDS = ["noise", "constant", "dc-offset-1e4", "spikes", "tiny-variance", "steps"]
GEOMETRIES = {  # id: (shape, window, hop)
    "w64-h32": ((3, 4, 257), 64, 32),
    "window-equals-length": ((2, 3, 50), 50, 7),
    "hop-over-window": ((2, 2, 301), 20, 45),
}


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("geometry", list(GEOMETRIES))
@pytest.mark.parametrize("kind", KINDS)
def test_backends_match_definitions_on_adversarial_inputs(kind, geometry, backend):
    shape, window, hop = GEOMETRIES[geometry]
    x = _adversarial(kind, shape)
    spec = FeatureSpec(window, hop)
    assert parity_error(extract(x, spec, backend=backend), x, spec) <= TOL


def test_float64_input_is_computed_in_float64():
    x = 1e8 + np.random.default_rng(4).standard_normal((1, 2, 64))  # float32 spaces samples near 1e8 by 8
    spec = FeatureSpec(32, 16, ("std", "mean_abs_change"))
    assert parity_error(extract(x, spec, backend="torch"), x, spec) <= TOL  # in float32 the spread would be lost


def test_constant_windows_have_zero_spread_not_nan():
    x = np.full((1, 2, 16), 4.0, np.float32)
    spec = FeatureSpec(8, 4, ("std", "skew", "kurtosis", "zero_crossing_rate"))
    for backend in CPU_BACKENDS:
        out = extract(x, spec, backend=backend)
        assert not np.isnan(out).any() and np.count_nonzero(out) == 0, backend


def test_naive_one_pass_variance_would_fail_the_dc_case():
    """The parity bound is tight enough to catch the textbook float32 mistake."""
    x = _adversarial("dc-offset-1e4", (2, 2, 128))
    spec = FeatureSpec(64, 32, ("std",))
    xw = torch.from_numpy(x).unfold(-1, 64, 32)
    naive = (xw.pow(2).mean(-1) - xw.mean(-1).pow(2)).clamp(min=0).sqrt().permute(0, 2, 1)[..., None]
    assert parity_error(naive, x, spec) > 1e-3
    assert parity_error(extract(x, spec), x, spec) <= TOL


OFFSETS = [0.0, 1.0, -50.0, 1e4]


def _random_case(seed: int) -> tuple[np.ndarray, FeatureSpec, float]:
    """(x, spec, offset) from the same ranges as the hypothesis strategy below."""
    rng = np.random.default_rng(seed)
    n_series, n_channels, window, hop, extra = (int(v) for v in rng.integers([1, 1, 2, 1, 0], [3, 4, 41, 31, 31]))
    x = rng.uniform(-1e3, 1e3, (n_series, n_channels, window + extra)).astype(np.float32)
    return x, FeatureSpec(window, hop), OFFSETS[seed % len(OFFSETS)]


def random_signals(max_examples: int):
    """Hypothesis over random shapes and values when it is installed, else `max_examples` seeded cases."""
    if given is None:
        return pytest.mark.parametrize("case", [_random_case(seed) for seed in range(max_examples)])
    signals = st.tuples(
        st.integers(1, 2), st.integers(1, 3), st.integers(2, 40), st.integers(1, 30), st.integers(0, 30),
    ).flatmap(
        lambda p: st.tuples(
            hnp.arrays(np.float32, (p[0], p[1], p[2] + p[4]),
                       elements=st.floats(-1e3, 1e3, width=32, allow_subnormal=False)),
            st.just(FeatureSpec(p[2], p[3])),
            st.sampled_from(OFFSETS),
        )
    )
    return lambda test: settings(max_examples=max_examples, deadline=None)(given(signals)(test))


@random_signals(40)
def test_cpu_backends_match_definitions_property(case):
    x, spec, offset = case
    x = x + np.float32(offset)
    ref = reference_extract(x, spec)
    for backend in CPU_BACKENDS:
        assert parity_error(extract(x, spec, backend=backend), x, spec, ref) <= TOL, backend


def test_auto_backend_is_torch_on_cpu():
    x = _adversarial("noise", (2, 2, 40))
    spec = FeatureSpec(8, 3)
    np.testing.assert_array_equal(extract(x, spec), extract(x, spec, backend="torch"))


@pytest.fixture
def median_ish():
    """A statistic registered for one test, through the public registry, and removed after it."""
    stat = register_stat(Stat("median_ish", "mean of min and max", lambda w: (w.minimum + w.maximum) / 2,
                              lambda x: float((x.min() + x.max()) / 2), lambda absmax, rng, n: absmax))
    yield stat
    del STATS[stat.name]


def test_new_stat_needs_no_caller_change(median_ish):
    x = _adversarial("spikes", (2, 2, 40))
    spec = FeatureSpec(10, 5, ("mean", median_ish.name))
    for backend in CPU_BACKENDS:
        assert parity_error(extract(x, spec, backend=backend), x, spec) <= TOL, backend


# --- the compiled torch path ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def compiled_geometries():
    """Compile the torch CPU path once per geometry (5-15 s each), as serving's warm-up does."""
    paths = {g: warmup(FeatureSpec(w, h), shape[1]) for g, (shape, w, h) in GEOMETRIES.items()}
    assert set(paths.values()) == {"torch (compiled)"}, paths
    return paths


@pytest.mark.parametrize("geometry", list(GEOMETRIES))
def test_compiled_torch_matches_definitions_on_adversarial_inputs(compiled_geometries, geometry):
    shape, window, hop = GEOMETRIES[geometry]
    spec = FeatureSpec(window, hop)
    assert DISPATCHER.compiled.lookup(torch.zeros(shape), spec) is not None  # warmed: this call runs compiled
    for kind in KINDS:
        x = _adversarial(kind, shape)
        assert parity_error(extract(x, spec, backend="torch"), x, spec) <= TOL, kind


def test_compiled_torch_serves_any_batch_and_length_without_recompiling(compiled_geometries):
    shape, window, hop = GEOMETRIES["w64-h32"]
    spec = FeatureSpec(window, hop)
    rng = np.random.default_rng(3)
    with torch._dynamo.config.patch(error_on_recompile=True):  # a recompile here would raise
        for n_series, length in [(1, 64), (1, 300), (5, 97), (9, 1000)]:
            x = (50 + rng.standard_normal((n_series, shape[1], length))).astype(np.float32)
            got = extract(torch.from_numpy(x), spec, backend="torch")
            assert got.shape == (n_series, spec.n_windows(length), shape[1], len(spec.stats))
            assert parity_error(got, x, spec) <= TOL, (n_series, length)


def test_small_uncompiled_calls_stay_eager_and_large_ones_compile():
    spec, x = FeatureSpec(16, 8, ("mean", "std")), _adversarial("noise", (2, 3, 64))
    eager = Dispatcher()  # its own compile cache, with the production threshold
    eager.extract(x, spec)  # 2·3·7·16 window samples: far below COMPILE_MIN_SAMPLES
    assert len(eager.compiled) == 0
    eager_only = Dispatcher(CompileCache(min_samples=1 << 40))
    assert eager_only.warmup(spec, 3, backend="jax", lengths=(64,)) == "jax"  # warming JAX compiles no torch path
    assert len(eager_only.compiled) == 0
    compiling = Dispatcher(CompileCache(min_samples=100))
    got = compiling.extract(x, spec)
    assert len(compiling.compiled) == 1 and compiling.compiled.lookup(torch.from_numpy(x), spec) is not None
    assert parity_error(got, x, spec) <= TOL


def test_warmup_reports_the_path_and_validates():
    assert warmup(FeatureSpec(8, 4, ("mean",)), 2, backend="jax", lengths=(20, 33)) == "jax"
    with pytest.raises(FeatureSpecError, match="n_channels must be an integer >= 1, got 0"):
        warmup(FeatureSpec(8, 4), 0)
    with pytest.raises(FeatureSpecError, match="backend must be one of .* got 'cuda'"):
        warmup(FeatureSpec(8, 4), 2, backend="cuda")


def test_importing_the_feature_path_loads_no_platform_dependencies():
    """A GPU host has torch, Triton and JAX only: the feature path must import without the rest."""
    code = ("import sys, fusion.features.backends, fusion.features.reference, fusion.kernels.window_stats; "
            "print(sorted({'kedro', 'mlflow', 'fastapi', 'pandas', 'pydantic_settings'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
