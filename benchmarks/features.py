"""Windowed-statistics throughput: fusion's backends against a naive torch unfold, torch.compile and tsfresh.

    python benchmarks/features.py --quick            # < 2 min on 2 cores; fills docs/benchmarks.md
    python benchmarks/features.py --json out.json    # full: 20,000 series-windows x 8 channels, window 256, hop 128

Every implementation sees the same synthetic sensor data (per-channel DC offsets up to 1e4 plus noise
and spikes). Errors are `fusion.features.parity_error` against the float64 reference on a subsample.
On a CUDA machine it also compares Triton, torch eager and torch.compile in GB/s.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import table, write_json, write_section  # noqa: E402

from fusion.features import FeatureSpec, extract, parity_error, reference_extract  # noqa: E402

WINDOW, HOP, CHANNELS = 256, 128, 8
OFFSETS = np.array([0.0, 1.0, 9.81, -50.0, 100.0, 1e3, 1e4, 0.5], np.float32)  # per-channel DC level
HBM_PEAK_GBS = {"H100": 3350.0, "H200": 4800.0}  # SXM datasheet figures, by device-name substring


def make_data(series_windows: int, seed: int = 0) -> np.ndarray:
    """[n_series, 8, length] float32 with 8 windows per series."""
    rng = np.random.default_rng(seed)
    n_series, length = series_windows // 8, WINDOW + 7 * HOP
    x = rng.standard_normal((n_series, CHANNELS, length)).astype(np.float32)
    x += 20.0 * (rng.random(x.shape) < 0.002)  # occasional spikes
    return x + OFFSETS[None, :, None]


def naive_unfold(x: torch.Tensor) -> torch.Tensor:
    """One-pass textbook formulas on raw power sums (what one writes first): fast, and wrong under a DC offset."""
    w = x.unfold(-1, WINDOW, HOP)
    n = WINDOW
    s1, s2, s3, s4 = w.sum(-1), (w * w).sum(-1), (w**3).sum(-1), (w**4).sum(-1)
    mean = s1 / n
    var = (s2 / n - mean**2).clamp(min=0)
    m3 = s3 / n - 3 * mean * s2 / n + 2 * mean**3
    m4 = s4 / n - 4 * mean * s3 / n + 6 * mean**2 * s2 / n - 3 * mean**4
    lo, hi = w.amin(-1), w.amax(-1)
    d = w - mean[..., None]
    zcr = (torch.sign(d[..., 1:]) * torch.sign(d[..., :-1]) < 0).float().mean(-1)
    mac = w.diff(dim=-1).abs().mean(-1)
    safe = var.clamp(min=1e-30)
    stats = [mean, var.sqrt(), lo, hi, (s2 / n).sqrt(), hi - lo, m3 / safe**1.5, m4 / safe**2 - 3, zcr, mac, s2]
    return torch.stack(stats, -1).permute(0, 2, 1, 3)


def best_time(fn: Callable[[], object], repeat: int) -> float:
    """Fastest of `repeat` runs, in seconds (after whatever warm-up the caller did)."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def run_tsfresh(x: np.ndarray, n_series: int) -> tuple[float, int, float]:
    """(seconds, channel-windows, max error on mean/std/min/max/rms) for tsfresh MinimalFCParameters."""
    import pandas as pd
    from tsfresh import extract_features
    from tsfresh.feature_extraction import MinimalFCParameters

    windows = torch.from_numpy(x[:n_series]).unfold(-1, WINDOW, HOP).numpy()  # [S, C, W, window]
    s, c, w, _ = windows.shape
    ids = np.repeat(np.arange(s * c * w), WINDOW)
    long = pd.DataFrame({"id": ids, "time": np.tile(np.arange(WINDOW), s * c * w), "value": windows.ravel()})
    start = time.perf_counter()
    feats = extract_features(long, column_id="id", column_sort="time", default_fc_parameters=MinimalFCParameters(),
                             disable_progressbar=True, n_jobs=0)
    seconds = time.perf_counter() - start
    spec = FeatureSpec(WINDOW, HOP, ("mean", "std", "min", "max", "rms"))
    cols = ["value__mean", "value__standard_deviation", "value__minimum", "value__maximum", "value__root_mean_square"]
    got = feats[cols].to_numpy().reshape(s, c, w, 5).transpose(0, 2, 1, 3)
    return seconds, s * c * w, parity_error(got, x[:n_series], spec)



def cpu_rows(x: np.ndarray, repeat: int, tsfresh_series: int) -> list[dict]:
    spec = FeatureSpec(WINDOW, HOP)
    xt = torch.from_numpy(x)
    sub = min(len(x), 25)
    ref = reference_extract(x[:sub], spec)
    def err(out) -> float | str:
        e = parity_error(np.asarray(out)[:sub], x[:sub], spec, ref)
        return e if np.isfinite(e) else "non-finite output"

    rows = []

    def add(name: str, seconds: float | None, error: float | str, windows: int, note: str = "") -> None:
        rate = windows / seconds if seconds else None
        rows.append({"implementation": name, "seconds": seconds, "channel_windows_per_s": rate,
                     "samples_per_s": rate * WINDOW if rate else None, "max_rel_error": error, "note": note})

    n_cw = x.shape[0] * CHANNELS * spec.n_windows(x.shape[-1])
    for backend in ("torch", "jax"):
        out = extract(x, spec, backend=backend)  # warm-up: JAX compiles here
        add(f"fusion {backend} (CPU)", best_time(lambda b=backend: extract(x, spec, backend=b), repeat), err(out), n_cw)
    with torch.no_grad():
        add("naive torch unfold (one-pass)", best_time(lambda: naive_unfold(xt), repeat), err(naive_unfold(xt)), n_cw)
        try:
            compiled = torch.compile(naive_unfold)
            start = time.perf_counter()
            out = compiled(xt)
            compile_s = time.perf_counter() - start
            add("torch.compile(naive unfold)", best_time(lambda: compiled(xt), repeat), err(out), n_cw,
                f"compile {compile_s:.1f} s, excluded")
        except Exception as e:  # report, do not crash: the table says why
            add("torch.compile(naive unfold)", None, "n/a", n_cw, f"failed: {type(e).__name__}: {str(e)[:80]}")
    try:
        seconds, windows, error = run_tsfresh(x, tsfresh_series)
        add("tsfresh MinimalFCParameters", seconds, error, windows,
            f"{windows} channel-windows subsample; error on mean/std/min/max/rms")
    except ImportError as e:
        add("tsfresh MinimalFCParameters", None, "n/a", 0, f"unavailable: {e}")
    return rows


def cuda_rows(x: np.ndarray, repeat: int) -> list[dict]:
    """Triton vs torch eager vs torch.compile on the GPU, in GB/s and against a device-to-device copy."""
    spec = FeatureSpec(WINDOW, HOP)
    xg = torch.from_numpy(x).cuda()
    name = torch.cuda.get_device_name()
    peak = next((v for k, v in HBM_PEAK_GBS.items() if k in name), None)
    moved = xg.numel() * 4 + xg.shape[0] * spec.n_windows(xg.shape[-1]) * CHANNELS * 11 * 4  # read x once, write out

    def timed(fn: Callable[[], object]) -> float:
        fn()
        torch.cuda.synchronize()
        return best_time(lambda: (fn(), torch.cuda.synchronize()), repeat)

    copy_gbs = 2 * xg.numel() * 4 / timed(lambda: xg.clone()) / 1e9
    impls = {"fusion triton": lambda: extract(xg, spec, backend="triton"),
             "fusion torch (CUDA eager)": lambda: extract(xg, spec, backend="torch")}
    try:
        compiled = torch.compile(naive_unfold)
        impls["torch.compile(naive unfold)"] = lambda: compiled(xg)
    except Exception as e:  # noqa: BLE001
        print(f"torch.compile on CUDA failed: {e}")
    rows = []
    for label, fn in impls.items():
        gbs = moved / timed(fn) / 1e9
        rows.append({"implementation": label, "device": name, "GB_per_s": gbs,
                     "pct_hbm_peak": 100 * gbs / peak if peak else None, "pct_of_d2d_copy": 100 * gbs / copy_gbs})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small data, < 2 min on 2 cores")
    parser.add_argument("--json", metavar="PATH", help="also write the raw figures as JSON")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    series_windows, repeat, tsfresh_series = (2_000, 5, 4) if args.quick else (20_000, 5, 25)
    x = make_data(series_windows)
    rows = cpu_rows(x, repeat, tsfresh_series)
    gpu = cuda_rows(x, repeat) if torch.cuda.is_available() else []
    show = lambda v: "n/a" if v is None else v  # noqa: E731
    md = (f"Windowed statistics, {series_windows:,} series-windows x {CHANNELS} channels, window {WINDOW}, hop {HOP}"
          f" ({'quick' if args.quick else 'full'} mode), float32. Error: `parity_error` vs the float64 reference"
          " (fusion's bound is 1e-5).\n\n")
    md += table(["implementation", "channel-windows/s", "samples/s", "max rel. error", "note"],
                [[r["implementation"], show(r["channel_windows_per_s"]), show(r["samples_per_s"]),
                  r["max_rel_error"], r["note"]] for r in rows])
    if gpu:
        md += "\n\n" + table(["implementation (CUDA)", "GB/s", "% HBM peak", "% of D2D copy"],
                             [[r["implementation"], r["GB_per_s"], show(r["pct_hbm_peak"]), r["pct_of_d2d_copy"]]
                              for r in gpu])
    else:
        md += "\n\nNo CUDA device in this run: the Triton rows need a GPU machine."
    print(md)
    write_section("features", md)
    write_json(args.json, {"series_windows": series_windows, "cpu": rows, "cuda": gpu})


if __name__ == "__main__":
    main()
