"""Windowed-statistics throughput: fusion's backends against a naive torch unfold, torch.compile and tsfresh.

    python benchmarks/features.py --quick            # < 2 min on 2 cores; fills docs/benchmarks.md
    python benchmarks/features.py --json out.json    # full: 20,000 series-windows x 8 channels, window 256, hop 128
                                                     # (its own section, features-full, of docs/benchmarks.md)

Every implementation sees the same synthetic sensor data (per-channel DC offsets up to 1e4 plus noise
and spikes). Errors are `fusion.features.reference.parity_error` against the float64 reference on a subsample.
The torch rows are timed interleaved, round after round, and each keeps its fastest round, so a busy
machine slows every row alike; JAX runs after them (its idle worker threads spin and would slow the
next row). fusion's torch row is its compiled path after `warmup` (what serving runs); the
eager row is what an unwarmed small call runs. On a CUDA machine it also compares Triton, torch eager and
torch.compile in GB/s against a device-to-device copy, at window 256 and window 64. This script needs
only numpy, torch and fusion.features (plus JAX, Triton and tsfresh for their rows): no Kedro, no MLflow.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import table, write_json, write_section  # noqa: E402

from fusion.features.backends import CompileCache, Dispatcher, extract, warmup  # noqa: E402
from fusion.features.reference import parity_error, reference_extract  # noqa: E402
from fusion.features.spec import FeatureSpec  # noqa: E402

EAGER = Dispatcher(CompileCache(min_samples=1 << 62))  # a dispatcher that never compiles: the eager torch path

WINDOW, HOP, CHANNELS = 256, 128, 8
OFFSETS = np.array([0.0, 1.0, 9.81, -50.0, 100.0, 1e3, 1e4, 0.5], np.float32)  # per-channel DC level
HBM_PEAK_GBS = {"H100": 3350.0, "H200": 4800.0}  # SXM datasheet figures, by device-name substring
TARGETS = {"vs_tsfresh": 1000.0, "vs_tsfresh_floor": 100.0, "vs_torch_compile": 0.8}  # issue 4's CPU targets


def make_data(series_windows: int, seed: int = 0, length: int | None = None) -> np.ndarray:
    """[n_series, 8, length] float32; by default 8 windows of 256/128 per series."""
    rng = np.random.default_rng(seed)
    length = length or WINDOW + 7 * HOP
    n_series = max(1, series_windows // ((length - WINDOW) // HOP + 1))
    x = rng.standard_normal((n_series, CHANNELS, length)).astype(np.float32)
    x += 20.0 * (rng.random(x.shape) < 0.002)  # occasional spikes
    return x + OFFSETS[None, :, None]


def naive_unfold(x: torch.Tensor, window: int = WINDOW, hop: int = HOP) -> torch.Tensor:
    """One-pass textbook formulas on raw power sums (what one writes first): fast, and wrong under a DC offset."""
    w = x.unfold(-1, window, hop)
    n = window
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


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def interleaved_best(fns: dict[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    """Fastest of `rounds` runs of each function, in seconds; the functions take turns within each round."""
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(rounds):
        for name, fn in fns.items():
            best[name] = min(best[name], timed(fn))
    return best


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


def _row(name: str, seconds: float | None, error: float | str, windows: int, window: int, note: str = "") -> dict:
    rate = windows / seconds if seconds else None
    return {"implementation": name, "seconds": seconds, "channel_windows_per_s": rate,
            "samples_per_s": rate * window if rate else None, "max_rel_error": error, "note": note}


def cpu_rows(x: np.ndarray, rounds: int, tsfresh_series: int) -> list[dict]:
    spec = FeatureSpec(WINDOW, HOP)
    xt = torch.from_numpy(x)
    sub = min(len(x), 25)
    ref = reference_extract(x[:sub], spec)

    def err(out) -> float | str:
        e = parity_error(np.asarray(out)[:sub], x[:sub], spec, ref)
        return e if np.isfinite(e) else "non-finite output"

    n_cw = x.shape[0] * CHANNELS * spec.n_windows(x.shape[-1])
    fns, errors, notes = {}, {}, {}
    start = time.perf_counter()
    path = warmup(spec, CHANNELS)  # what serving does before it reports ready
    notes["fusion torch (CPU)"] = f"{path}; warm-up {time.perf_counter() - start:.1f} s, excluded"
    fns["fusion torch (CPU)"] = lambda: extract(x, spec, backend="torch")
    fns["fusion torch eager (CPU)"] = lambda: EAGER.extract(xt, spec, backend="torch")
    notes["fusion torch eager (CPU)"] = "auto's path for small unwarmed calls"
    fns["naive torch unfold (one-pass)"] = lambda: naive_unfold(xt)
    try:
        compiled = torch.compile(naive_unfold)
        start = time.perf_counter()
        with torch.no_grad():
            compiled(xt)
        notes["torch.compile(naive unfold)"] = f"compile {time.perf_counter() - start:.1f} s, excluded"
        fns["torch.compile(naive unfold)"] = lambda: compiled(xt)
    except Exception as e:  # noqa: BLE001  (report, do not crash: the table says why)
        notes["torch.compile(naive unfold)"] = f"failed: {type(e).__name__}: {str(e)[:80]}"
    with torch.no_grad():
        for name, fn in fns.items():
            errors[name] = err(fn())  # also the warm-up run of each
        # the two compiled rows, the comparison that matters, take turns for many rounds (a call takes
        # milliseconds, and on a shared machine only the best rounds are free of other work); the slow
        # eager rows for fewer
        fast = ["fusion torch (CPU)", "torch.compile(naive unfold)"]
        best = interleaved_best({k: fns[k] for k in fast if k in fns}, 30 * rounds)
        best.update(interleaved_best({k: v for k, v in fns.items() if k not in fast}, rounds))
    # JAX last and on its own: XLA's worker threads keep spinning after a call and would slow
    # whatever torch row ran next, so interleaving it would misreport the torch rows.
    start = time.perf_counter()
    errors["fusion jax (CPU)"] = err(extract(x, spec, backend="jax"))
    notes["fusion jax (CPU)"] = f"jit {time.perf_counter() - start:.1f} s, excluded"
    fns["fusion jax (CPU)"] = lambda: extract(x, spec, backend="jax")
    best.update(interleaved_best({"fusion jax (CPU)": fns["fusion jax (CPU)"]}, rounds))
    rows = [_row(name, best[name], errors[name], n_cw, WINDOW, notes.get(name, "")) for name in fns]
    if "torch.compile(naive unfold)" not in fns:
        rows.append(_row("torch.compile(naive unfold)", None, "n/a", n_cw, WINDOW, notes["torch.compile(naive unfold)"]))
    try:
        seconds, windows, error = run_tsfresh(x, tsfresh_series)
        rows.append(_row("tsfresh MinimalFCParameters", seconds, error, windows, WINDOW,
                         f"{windows} channel-windows subsample; error on mean/std/min/max/rms"))
    except ImportError as e:
        rows.append(_row("tsfresh MinimalFCParameters", None, "n/a", 0, WINDOW, f"unavailable: {e}"))
    return rows


def verdict(rows: list[dict]) -> dict:
    """fusion's CPU path against tsfresh and torch.compile, with the issue's targets."""
    rate = {r["implementation"]: r["channel_windows_per_s"] for r in rows}
    fusion = rate.get("fusion torch (CPU)")
    out = {}
    for key, peer in [("vs_tsfresh", "tsfresh MinimalFCParameters"), ("vs_torch_compile", "torch.compile(naive unfold)")]:
        out[key] = fusion / rate[peer] if fusion and rate.get(peer) else None
    out["met_vs_tsfresh"] = out["vs_tsfresh"] is not None and out["vs_tsfresh"] >= TARGETS["vs_tsfresh"]
    out["met_vs_tsfresh_floor"] = out["vs_tsfresh"] is not None and out["vs_tsfresh"] >= TARGETS["vs_tsfresh_floor"]
    out["met_vs_torch_compile"] = (out["vs_torch_compile"] is not None
                                   and out["vs_torch_compile"] >= TARGETS["vs_torch_compile"])
    return out


def cuda_rows(x: np.ndarray, window: int, hop: int, repeat: int) -> list[dict]:
    """Triton vs torch eager vs torch.compile on the GPU, in GB/s and against a device-to-device copy."""
    spec = FeatureSpec(window, hop)
    xg = torch.from_numpy(x).cuda()
    name = torch.cuda.get_device_name()
    peak = next((v for k, v in HBM_PEAK_GBS.items() if k in name), None)
    n_cw = xg.shape[0] * spec.n_windows(xg.shape[-1]) * CHANNELS
    moved = xg.numel() * 4 + n_cw * len(spec.stats) * 4  # read x once, write the statistics

    def gpu_time(fn: Callable[[], object]) -> float:
        fn()
        torch.cuda.synchronize()
        return min(timed(lambda: (fn(), torch.cuda.synchronize())) for _ in range(repeat))

    copy_gbs = 2 * xg.numel() * 4 / gpu_time(lambda: xg.clone()) / 1e9
    warmup(spec, CHANNELS, backend="triton", device="cuda")
    impls = {"fusion triton": lambda: extract(xg, spec, backend="triton"),
             "fusion torch (CUDA eager)": lambda: extract(xg, spec, backend="torch")}
    try:
        compiled = torch.compile(partial(naive_unfold, window=window, hop=hop))
        impls["torch.compile(naive unfold)"] = lambda: compiled(xg)
    except Exception as e:  # noqa: BLE001
        print(f"torch.compile on CUDA failed: {e}")
    sub = x[:2]
    ref = reference_extract(sub, spec)
    rows = []
    for label, fn in impls.items():
        with torch.no_grad():
            seconds = gpu_time(fn)
            error = parity_error(fn()[:2].float().cpu().numpy(), sub, spec, ref)
        gbs = moved / seconds / 1e9
        rows.append({"implementation": label, "device": name, "window": window, "hop": hop, "seconds": seconds,
                     "channel_windows_per_s": n_cw / seconds, "GB_per_s": gbs,
                     "pct_hbm_peak": 100 * gbs / peak if peak else None, "pct_of_d2d_copy": 100 * gbs / copy_gbs,
                     "d2d_copy_GB_per_s": copy_gbs, "max_rel_error": error if np.isfinite(error) else "non-finite"})
    return rows


def markdown(series_windows: int, quick: bool, rows: list[dict], summary: dict, gpu: list[dict]) -> str:
    show = lambda v: "n/a" if v is None else v  # noqa: E731
    md = (f"Windowed statistics, {series_windows:,} series-windows x {CHANNELS} channels, window {WINDOW}, hop {HOP}"
          f" ({'quick' if quick else 'full'} mode), float32. Error: `parity_error` vs the float64 reference"
          " (fusion's bound is 1e-5). CPU rows timed interleaved, best round each.\n\n")
    md += table(["implementation", "channel-windows/s", "samples/s", "max rel. error", "note"],
                [[r["implementation"], show(r["channel_windows_per_s"]), show(r["samples_per_s"]),
                  r["max_rel_error"], r["note"]] for r in rows])
    ratio = lambda v: "n/a" if v is None else f"{v:,.3g}x"  # noqa: E731
    mark = lambda ok: "met" if ok else "MISSED"  # noqa: E731
    md += (f"\n\nfusion torch (CPU) vs tsfresh: {ratio(summary['vs_tsfresh'])} (target 1,000x: "
           f"{mark(summary['met_vs_tsfresh'])}; floor 100x: {mark(summary['met_vs_tsfresh_floor'])}); "
           f"vs torch.compile steady state: {ratio(summary['vs_torch_compile'])} "
           f"(target 0.8x: {mark(summary['met_vs_torch_compile'])}).")
    if gpu:
        md += "\n\n" + table(["implementation (CUDA)", "window/hop", "channel-windows/s", "GB/s", "% HBM peak",
                              "% of D2D copy", "max rel. error"],
                             [[r["implementation"], f"{r['window']}/{r['hop']}", r["channel_windows_per_s"],
                               r["GB_per_s"], show(r["pct_hbm_peak"]), r["pct_of_d2d_copy"], r["max_rel_error"]]
                              for r in gpu])
        md += f"\n\nDevice: {gpu[0]['device']}; device-to-device copy {gpu[0]['d2d_copy_GB_per_s']:.0f} GB/s."
    else:
        md += "\n\nNo CUDA device in this run: the Triton rows need a GPU machine (benchmarks/gpu_check.sh)."
    return md


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small data, < 2 min on 2 cores")
    parser.add_argument("--json", metavar="PATH", help="also write the raw figures as JSON")
    parser.add_argument("--no-doc", action="store_true", help="do not rewrite the section of docs/benchmarks.md")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    series_windows, rounds, tsfresh_series = (2_000, 7, 4) if args.quick else (20_000, 9, 25)
    x = make_data(series_windows)
    rows = cpu_rows(x, rounds, tsfresh_series)
    summary = verdict(rows)
    gpu = []
    if torch.cuda.is_available():
        n_series, length = (100, 8192) if args.quick else (1000, 32768)  # issue 4's scale: 1,000 x 8 x 32,768
        xg = make_data(n_series * ((length - WINDOW) // HOP + 1), seed=1, length=length)
        gpu = cuda_rows(xg, 256, 128, rounds) + cuda_rows(xg, 64, 32, rounds)
    md = markdown(series_windows, args.quick, rows, summary, gpu)
    print(md)
    if not args.no_doc:  # quick and full runs keep a section each
        write_section("features" if args.quick else "features-full", md)
    write_json(args.json, {"series_windows": series_windows, "quick": args.quick, "cpu": rows, "summary": summary,
                           "cuda": gpu})


if __name__ == "__main__":
    main()
