"""fusion.features: the spec, every backend against the float64 definitions, and the table helper.

This file also runs on a bare GPU host (torch, Triton, JAX and pytest only; see benchmarks/gpu_check.sh):
pandas and hypothesis are optional there. Without hypothesis the property tests run on seeded random
cases drawn from the same ranges; the `features_table` tests need pandas and skip without it.
"""

import os
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

if not torch.cuda.is_available():  # before anything defines a Triton kernel: interpret it on CPU
    os.environ.setdefault("TRITON_INTERPRET", "1")

from fusion import features  # noqa: E402
from fusion.errors import FeatureSpecError  # noqa: E402
from fusion.features import (  # noqa: E402
    DEFAULT_STATS,
    STATS,
    FeatureSpec,
    Stat,
    extract,
    features_table,
    parity_error,
    reference_extract,
)

CPU_BACKENDS = ["torch", "jax"]
TOL = 1e-5  # largest parity_error any backend may show


# --- the spec ------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"window": 1, "hop": 1}, "window must be an integer >= 2, got 1"),
        ({"window": 8.0, "hop": 1}, "window must be an integer >= 2, got 8.0"),
        ({"window": 8, "hop": 0}, "hop must be an integer >= 1, got 0"),
        ({"window": 8, "hop": 2, "stats": ("mean", "median")}, r"unknown stat\(s\) \['median'\]"),
        ({"window": 8, "hop": 2, "stats": ()}, "stats must not be empty"),
        ({"window": 8, "hop": 2, "stats": ("std", "mean", "std")}, r"duplicates \['std'\]"),
        ({"window": 8, "hop": 2, "stats": "mean"}, "stats must be a list or tuple of names, got 'mean'"),
        ({"window": 8, "hop": 2, "channels": ("ax", "ax")}, r"channels has duplicates \['ax'\]"),
    ],
    ids=["window-1", "window-float", "hop-0", "unknown-stat", "empty-stats", "duplicate-stats", "stats-str",
         "duplicate-channels"],
)
def test_spec_rejects_bad_arguments(kwargs, match):
    with pytest.raises(FeatureSpecError, match=match):
        FeatureSpec(**kwargs)


def test_spec_errors_are_value_errors():
    with pytest.raises(ValueError):
        FeatureSpec(1, 1)


def test_spec_roundtrips_and_hashes():
    spec = FeatureSpec(128, 64, ("rms", "mean"), ("ax", "ay"))
    assert FeatureSpec.from_json(spec.to_json()) == spec
    assert FeatureSpec.from_dict(spec.to_dict()) == spec
    assert {spec: 1}[FeatureSpec(128, 64, ["rms", "mean"], ["ax", "ay"])] == 1
    assert spec.digest() != FeatureSpec(128, 64, ("mean", "rms"), ("ax", "ay")).digest()  # order matters
    assert spec.to_json() == spec.to_json().replace(" ", "")


def test_digest_is_stable_across_processes():
    spec = FeatureSpec(100, 30, ("skew", "min"), ("wx", "wy"))
    code = ("from fusion.features import FeatureSpec; "
            "print(FeatureSpec(100, 30, ('skew', 'min'), ('wx', 'wy')).digest())")
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.strip() == spec.digest()


def test_from_params_reads_kedro_parameters():
    spec = FeatureSpec.from_params({"window": 128, "hop": 64, "stats": ["std"], "backend": "auto"}, ["ax", "ay"])
    assert (spec.window, spec.hop, spec.stats, spec.channels) == (128, 64, ("std",), ("ax", "ay"))
    assert FeatureSpec.from_params({"window": 4, "hop": 2}, None).stats == DEFAULT_STATS
    with pytest.raises(FeatureSpecError, match=r"unknown features parameter\(s\) \['windw'\]"):
        FeatureSpec.from_params({"windw": 4, "hop": 2}, ["ax"])
    with pytest.raises(FeatureSpecError, match=r"lack \['window'\]"):
        FeatureSpec.from_params({"hop": 2}, ["ax"])


def test_feature_names_are_channel_major():
    spec = FeatureSpec(4, 2, ("mean", "std"), ("ax", "ay"))
    assert spec.feature_names() == ["ax__mean", "ax__std", "ay__mean", "ay__std"]
    with pytest.raises(FeatureSpecError, match="channels is None"):
        FeatureSpec(4, 2).feature_names()


def test_importing_features_loads_neither_jax_nor_triton():
    code = "import sys, fusion.features; print(sorted({'jax', 'triton'} & set(sys.modules)))"
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


# --- numerics: every backend against the definitions ---------------------------------------------

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


GEOMETRIES = {  # id: (shape, window, hop)
    "w64-h32": ((3, 4, 257), 64, 32),
    "window-equals-length": ((2, 3, 50), 50, 7),
    "hop-over-window": ((2, 2, 301), 20, 45),
}


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("geometry", list(GEOMETRIES))
@pytest.mark.parametrize("kind", ["noise", "constant", "dc-offset-1e4", "spikes", "tiny-variance", "steps"])
def test_backends_match_definitions_on_adversarial_inputs(kind, geometry, backend):
    shape, window, hop = GEOMETRIES[geometry]
    x = _adversarial(kind, shape)
    spec = FeatureSpec(window, hop)
    assert parity_error(extract(x, spec, backend=backend), x, spec) <= TOL


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


@random_signals(10)
def test_triton_backend_matches_definitions_property(case):
    x, spec, offset = case
    x = torch.from_numpy(x + np.float32(offset))
    if torch.cuda.is_available():
        x = x.cuda()
    assert parity_error(extract(x, spec, backend="triton").cpu(), x.cpu(), spec) <= TOL


def test_auto_backend_is_torch_on_cpu():
    x = _adversarial("noise", (2, 2, 40))
    spec = FeatureSpec(8, 3)
    np.testing.assert_array_equal(extract(x, spec), extract(x, spec, backend="torch"))


def test_new_stat_needs_no_caller_change(monkeypatch):
    stat = Stat("median_ish", "mean of min and max", lambda w: (w.minimum + w.maximum) / 2,
                lambda x: float((x.min() + x.max()) / 2), lambda absmax, rng, n: absmax)
    monkeypatch.setitem(STATS, stat.name, stat)
    x = _adversarial("spikes", (2, 2, 40))
    spec = FeatureSpec(10, 5, ("mean", "median_ish"))
    for backend in CPU_BACKENDS:
        assert parity_error(extract(x, spec, backend=backend), x, spec) <= TOL


# --- features_table ------------------------------------------------------------------------------

def _canonical(lengths: dict[str, int], seed: int = 0):
    pd = pytest.importorskip("pandas", reason="features_table needs pandas (absent on a bare GPU host)")
    rng = np.random.default_rng(seed)
    parts = [pd.DataFrame({"series_id": sid, "t": np.arange(n, dtype=np.int64),
                           "ax": rng.standard_normal(n), "ay": 5 + rng.standard_normal(n),
                           "label": f"L{sid}", "group": f"G{len(sid)}"})
             for sid, n in lengths.items()]
    return pd.concat(parts, ignore_index=True)


def test_features_table_matches_extract_per_series():
    lengths = {"s9": 40, "s1": 23, "s5": 40, "s10": 31}  # two share a length: batched together
    canon = _canonical(lengths)
    spec = FeatureSpec(10, 6, ("mean", "kurtosis"))
    table = features_table(canon, spec, ["ax", "ay"])
    assert list(table.columns) == ["series_id", "window", "label", "group", *spec.feature_names(["ax", "ay"])]
    assert table["series_id"].unique().tolist() == list(lengths)  # order of first appearance
    for sid, n in lengths.items():
        rows = table[table["series_id"] == sid]
        assert rows["window"].tolist() == list(range((n - 10) // 6 + 1))
        assert set(rows["label"]) == {f"L{sid}"} and set(rows["group"]) == {f"G{len(sid)}"}
        x = canon.loc[canon["series_id"] == sid, ["ax", "ay"]].to_numpy(np.float32).T[None]
        expected = extract(x, spec).reshape(-1, 4)
        np.testing.assert_array_equal(rows[spec.feature_names(["ax", "ay"])].to_numpy(), expected)
    assert (table.dtypes.iloc[4:] == np.float32).all()


def test_features_table_without_label_or_group():
    canon = _canonical({"a": 12}).drop(columns=["label", "group"])
    table = features_table(canon, FeatureSpec(4, 4, ("max",)), ["ay"])
    assert list(table.columns) == ["series_id", "window", "ay__max"]
    np.testing.assert_allclose(table["ay__max"], canon["ay"].to_numpy(np.float32).reshape(3, 4).max(1))


def test_features_table_errors():
    canon = _canonical({"long": 20, "short": 7})
    with pytest.raises(FeatureSpecError, match="series 'short': series length 7 is shorter than window 8"):
        features_table(canon, FeatureSpec(8, 4), ["ax"])
    with pytest.raises(FeatureSpecError, match=r"lacks column\(s\) \['az'\]"):
        features_table(canon, FeatureSpec(4, 4), ["ax", "az"])


# --- the compiled torch path ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def compiled_geometries():
    """Compile the torch CPU path once per geometry (5-15 s each), as serving's warm-up does."""
    paths = {g: features.warmup(FeatureSpec(w, h), shape[1]) for g, (shape, w, h) in GEOMETRIES.items()}
    assert set(paths.values()) == {"torch (compiled)"}, paths
    return paths


@pytest.mark.parametrize("geometry", list(GEOMETRIES))
def test_compiled_torch_matches_definitions_on_adversarial_inputs(compiled_geometries, geometry):
    shape, window, hop = GEOMETRIES[geometry]
    spec = FeatureSpec(window, hop)
    assert features._COMPILED[features._compile_key(spec, shape[1])] is not None
    for kind in ["noise", "constant", "dc-offset-1e4", "spikes", "tiny-variance", "steps"]:
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


def test_small_uncompiled_calls_stay_eager_and_large_ones_compile(monkeypatch):
    monkeypatch.setattr(features, "_COMPILED", {})
    spec, x = FeatureSpec(16, 8, ("mean", "std")), _adversarial("noise", (2, 3, 64))
    extract(x, spec)  # 2·3·7·16 window samples: far below COMPILE_MIN_SAMPLES
    assert features._COMPILED == {}
    monkeypatch.setattr(features, "COMPILE_MIN_SAMPLES", 100)
    got = extract(x, spec)
    assert features._COMPILED[features._compile_key(spec, 3)] is not None
    assert parity_error(got, x, spec) <= TOL


def test_warmup_reports_the_path_and_validates():
    assert features.warmup(FeatureSpec(8, 4, ("mean",)), 2, backend="jax", lengths=(20, 33)) == "jax"
    assert features.warmup(FeatureSpec(8, 4, ("mean",)), 2, backend="triton") == "triton"  # interpreted on CPU
    with pytest.raises(FeatureSpecError, match="n_channels must be an integer >= 1, got 0"):
        features.warmup(FeatureSpec(8, 4), 0)
    with pytest.raises(FeatureSpecError, match="backend must be one of .* got 'cuda'"):
        features.warmup(FeatureSpec(8, 4), 2, backend="cuda")


def test_importing_the_feature_path_loads_no_platform_dependencies():
    """A GPU host has torch, Triton and JAX only: the feature path must import without the rest."""
    code = ("import sys, fusion.features, fusion.kernels.window_stats; "
            "print(sorted({'kedro', 'mlflow', 'fastapi', 'pandas', 'pydantic_settings'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
