"""fusion.features.spec: the statistic registry, the tolerances' place, and FeatureSpec's validation and identity."""

import os
import subprocess
import sys

import numpy as np
import pytest

from fusion.errors import FeatureSpecError
from fusion.features.spec import DEFAULT_STATS, STATS, FeatureSpec, Stat, register_stat


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


def test_spec_json_errors_name_the_input():
    with pytest.raises(FeatureSpecError, match="not valid JSON.*got '{window'"):
        FeatureSpec.from_json("{window")
    with pytest.raises(FeatureSpecError, match=r"must be an object, got '\[1\]'"):
        FeatureSpec.from_json("[1]")
    with pytest.raises(FeatureSpecError, match=r"unknown FeatureSpec field\(s\) \['size'\]"):
        FeatureSpec.from_dict({"window": 4, "hop": 2, "size": 3})


def test_digest_is_stable_across_processes():
    spec = FeatureSpec(100, 30, ("skew", "min"), ("wx", "wy"))
    code = ("from fusion.features.spec import FeatureSpec; "
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


def test_n_windows_counts_whole_windows_only():
    spec = FeatureSpec(10, 4)
    assert [spec.n_windows(n) for n in (10, 13, 14, 101)] == [1, 1, 2, 23]
    with pytest.raises(FeatureSpecError, match="series length 9 is shorter than window 10"):
        spec.n_windows(9)


def test_default_stats_are_the_registry_in_order():
    assert DEFAULT_STATS == tuple(STATS)[: len(DEFAULT_STATS)] == (
        "mean", "std", "min", "max", "rms", "peak_to_peak", "skew", "kurtosis",
        "zero_crossing_rate", "mean_abs_change", "abs_energy")


def test_definitions_on_a_known_window():
    x = np.array([1.0, -2.0, 3.0, 0.5])
    d = x - x.mean()  # 0.375, -2.625, 2.375, -0.125
    expected = {
        "mean": 0.625, "std": float(np.sqrt(np.mean(d**2))), "min": -2.0, "max": 3.0,
        "rms": float(np.sqrt(np.mean(x**2))), "peak_to_peak": 5.0,
        "skew": float(np.mean(d**3) / np.mean(d**2) ** 1.5), "kurtosis": float(np.mean(d**4) / np.mean(d**2) ** 2 - 3),
        "zero_crossing_rate": 1.0, "mean_abs_change": (3 + 5 + 2.5) / 3, "abs_energy": 14.25,
    }
    assert {name: STATS[name].definition(x) for name in expected} == pytest.approx(expected, rel=1e-12)


def test_flat_windows_have_zero_shape_statistics():
    flat = np.full(6, 1e4) + np.array([0, 1e-3, 0, 0, 0, 0])  # range 1e-3 <= 1e-6 * 1e4: flat
    for name in ("skew", "kurtosis"):
        assert STATS[name].definition(flat) == 0.0, name
    assert STATS["zero_crossing_rate"].definition(flat) == 0.0  # every centred value is inside the zero band


def test_register_stat_adds_to_the_registry_and_refuses_a_second_copy():
    stat = Stat("half_range", "(max - min) / 2", lambda w: w.range / 2, lambda x: float(np.ptp(x)) / 2,
                lambda absmax, rng, n: rng)
    try:
        assert register_stat(stat) is stat
        assert FeatureSpec(4, 2, ("mean", "half_range")).stats == ("mean", "half_range")
        assert FeatureSpec(4, 2).stats == DEFAULT_STATS  # the default does not grow
        with pytest.raises(FeatureSpecError, match="stat 'half_range' is already registered"):
            register_stat(stat)
    finally:
        STATS.pop("half_range", None)


def test_importing_the_spec_loads_no_array_library_but_numpy():
    """Kedro's registry, the bundle verifier and the kernel import the spec: it must not drag torch in."""
    code = ("import sys, fusion.features.spec, fusion.features.moments, fusion.features.reference; "
            "print(sorted({'torch', 'jax', 'triton', 'pandas'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
