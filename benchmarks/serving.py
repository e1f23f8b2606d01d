"""Serving throughput and latency: fusion serve (uncached, Redis-cached) against `mlflow models serve` of the same model.

    python benchmarks/serving.py --quick            # ≈ 2 min on 2 cores; fills docs/benchmarks.md
    python benchmarks/serving.py --json out.json    # longer steps

Each server runs alone with one worker on a loopback port; the load comes from a second process (an asyncio client
on raw keep-alive HTTP/1.1 connections, so the client is not the bottleneck) at a fixed arrival rate. Latency is
measured from each request's *scheduled* send time, so a server that falls behind shows its queue in the figures
(no coordinated omission). Every request carries one instance of 6 channels x 256 samples of the real sample data
(≈ 31 KB of JSON). Reported: p50/p99 at 1,000 requests/s, the highest sustained rate of a ladder (every request
answered 200 and p99 ≤ 100 ms), and closed-loop throughput with 8 connections (what `wrk -c 8` reports).

The bundle: `--bundle DIR`, else one built in a temporary directory from data/06_models/model.safetensors (run
`kedro run` first). The MLflow peer is the same weights logged as the fusion pyfunc ("models from code",
fusion/pyfunc_model.py) and served with `mlflow models serve --env-manager local`, which needs the venv's bin on
PATH (it starts `uvicorn`/`gunicorn` by name).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import table, write_json, write_section  # noqa: E402

from fusion.bundle.standalone import stop_group  # noqa: E402
from fusion.config import free_port  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SECRET = "benchmark-secret-" + "z" * 32
LADDER = (50, 100, 200, 400, 700, 1000, 1500, 2000, 2500, 3000, 4000, 5000)  # offered requests/s
SUSTAINED_P99_MS = 100.0
FIXED_RATE = 1000
CONNECTIONS = 64  # open-loop client connections (enough that the client never limits the offered rate)


# --- the load generator (runs in its own process: `serving.py --load ...`) ------------------------------------------

_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)", re.IGNORECASE)


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])  # "HTTP/1.1 200 ..."
    length = _CONTENT_LENGTH.search(head)  # one regex, not a dict of every header: the client stays cheap
    if length:
        return status, await reader.readexactly(int(length.group(1)))
    body = b""
    while True:  # chunked
        size = int((await reader.readline()).strip(), 16)
        chunk = await reader.readexactly(size + 2)
        if size == 0:
            return status, body
        body += chunk[:-2]


def _request(host: str, port: int, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return (f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n{extra}\r\n").encode() + body


async def _open_loop(host, port, request: bytes, rate: float, duration: float, conns: int, marker: bytes) -> dict:
    clock = time.perf_counter  # uvloop's loop.time() has millisecond resolution
    queue: asyncio.Queue = asyncio.Queue()
    lat, errors, marked = [], [], [0]

    async def worker():
        reader, writer = await asyncio.open_connection(host, port)
        while (scheduled := await queue.get()) is not None:
            try:
                writer.write(request)
                status, body = await _read_response(reader)
                if status == 200:
                    lat.append(clock() - scheduled)
                    marked[0] += marker in body
                else:
                    errors.append(status)
            except (OSError, asyncio.IncompleteReadError) as err:
                errors.append(type(err).__name__)
                reader, writer = await asyncio.open_connection(host, port)
        writer.close()

    workers = [asyncio.create_task(worker()) for _ in range(conns)]
    n = int(rate * duration)
    t0 = clock() + 0.05
    for i in range(n):
        due = t0 + i / rate
        if due > clock():
            await asyncio.sleep(due - clock())
        queue.put_nowait(due)
    for _ in workers:
        queue.put_nowait(None)
    try:
        await asyncio.wait_for(asyncio.gather(*workers), timeout=duration + 10)
    except TimeoutError:
        pass  # requests still unanswered 10 s after the last was due count as errors
    ms = np.array(lat) * 1e3
    pct = lambda q: float(np.percentile(ms, q)) if len(ms) else float("inf")  # noqa: E731
    return {"offered": rate, "sent": n, "ok": len(lat), "errors": n - len(lat), "marked": marked[0],
            "p50_ms": pct(50), "p99_ms": pct(99), "achieved": len(lat) / duration}


async def _closed_loop(host, port, request: bytes, duration: float, conns: int, marker: bytes) -> dict:
    loop = asyncio.get_running_loop()
    done, errors, marked = [0], [0], [0]
    end = loop.time() + duration

    async def worker():
        reader, writer = await asyncio.open_connection(host, port)
        while loop.time() < end:
            writer.write(request)
            try:
                status, body = await asyncio.wait_for(_read_response(reader), timeout=max(end - loop.time(), 0.1))
            except TimeoutError:
                break
            if status == 200:
                done[0] += 1
                marked[0] += marker in body
            else:
                errors[0] += 1
        writer.close()

    await asyncio.gather(*[worker() for _ in range(conns)])
    return {"rps": done[0] / duration, "errors": errors[0], "marked": marked[0]}


def load_main(args: argparse.Namespace) -> None:
    "The client process: read the spec as JSON from stdin, print results as JSON."
    spec = json.loads(sys.stdin.read())
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    request = _request(spec["host"], spec["port"], spec["path"], spec["body"].encode(), spec["headers"])
    marker = spec["marker"].encode()
    if spec["mode"] == "closed":
        out = asyncio.run(_closed_loop(spec["host"], spec["port"], request, spec["duration"], 8, marker))
    else:
        out = asyncio.run(_open_loop(spec["host"], spec["port"], request, spec["rate"], spec["duration"],
                                     CONNECTIONS, marker))
    print(json.dumps(out))


def run_load(target: dict, mode: str, duration: float, rate: float = 0.0) -> dict:
    spec = {**target, "mode": mode, "duration": duration, "rate": rate}
    done = subprocess.run([sys.executable, __file__, "--load"], input=json.dumps(spec), capture_output=True,
                          text=True, timeout=duration + 60)
    if done.returncode != 0:
        raise RuntimeError(f"load generator failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout)


# --- servers -----------------------------------------------------------------------------------------------------

def wait_http(url: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    import httpx
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited {proc.returncode}: {proc.stdout.read()[-2000:] if proc.stdout else ''}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"{url} not ready after {timeout} s")




def start(cmd: list[str], env: dict, ready_url: str) -> subprocess.Popen:
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        wait_http(ready_url, proc)
    except Exception:
        stop_group(proc)
        raise
    return proc


def build_bundle(dest: Path) -> Path:
    "The production bundle of data/06_models/model.safetensors, through the one writer (golden: the bench instance)."
    from fusion.bundle.package import SERVING_REQUIREMENTS, build_wheel, installed_distributions, lock_closure, lock_text
    from fusion.bundle.write import bundle_files, write_bundle
    from fusion.inference.predictor import Predictor
    from fusion.model.network import load_model_bytes

    weights = ROOT / "data" / "06_models" / "model.safetensors"
    if not weights.exists():
        sys.exit(f"no trained model at {weights}: run `kedro run` first, or pass --bundle")
    raw = weights.read_bytes()
    model = load_model_bytes(raw, str(weights))
    inputs = json.loads(instance_body())
    provenance = {"model_version": "bench", "mlflow_run_id": "bench", "feature_spec_digest": model.config["feature_spec_digest"]}
    lock = lock_text(lock_closure(SERVING_REQUIREMENTS, installed_distributions()))
    golden = [{**p, "cached": False} for p in Predictor(model).predict(inputs["instances"])]
    files = bundle_files(model, inputs, golden, provenance, build_wheel(), lock, weights=raw)
    return write_bundle(files, dest / "fusion-classifier" / "bench")


def save_pyfunc(bundle: Path, dest: Path) -> Path:
    "The bundle's weights as an MLflow pyfunc (models from code, no pickle), saved locally."
    import mlflow.pyfunc

    from fusion.inference.pyfunc import PYFUNC_CODE, WEIGHTS_ARTIFACT

    path = dest / "pyfunc"
    mlflow.pyfunc.save_model(path, python_model=str(PYFUNC_CODE),
                             artifacts={WEIGHTS_ARTIFACT: str(bundle / "model.safetensors")})
    return path


def instance_body() -> str:
    import pandas as pd

    raw = pd.read_parquet(ROOT / "data" / "01_raw" / "watch_long.parquet")
    first = raw[raw["series_id"] == raw["series_id"].iloc[0]].head(256)
    channels = {c: first[c].astype(float).tolist() for c in ("ax", "ay", "az", "wx", "wy", "wz")}
    return json.dumps({"instances": [{"series_id": "bench", "channels": channels}]})


def measure(name: str, target: dict, quick: bool) -> dict:
    "Closed-loop capacity first, then the fixed-rate ladder up to 1.5x that, then 1,000/s last (it may leave a backlog)."
    step = 1.5 if quick else 4.0
    print(f"[{name}] warm-up", flush=True)
    run_load(target, "open", 1.0, 50)
    closed = run_load(target, "closed", 2.0 if quick else 5.0)
    print(f"[{name}] closed loop (8 connections): {closed['rps']:.0f}/s", flush=True)
    sustained, ladder = 0, []
    for rate in (r for r in LADDER if r <= 1.5 * closed["rps"]):
        r = run_load(target, "open", step, rate)
        ladder.append(r)
        ok = r["errors"] == 0 and r["p99_ms"] <= SUSTAINED_P99_MS
        print(f"[{name}] {rate}/s: p99 {r['p99_ms']:.1f} ms errors {r['errors']} -> {'ok' if ok else 'not sustained'}",
              flush=True)
        if not ok:
            time.sleep(3)  # let the backlog drain
            break
        sustained = rate
    fixed = run_load(target, "open", 2.0 if quick else 5.0, FIXED_RATE)
    print(f"[{name}] {FIXED_RATE}/s: p50 {fixed['p50_ms']:.2f} ms p99 {fixed['p99_ms']:.2f} ms errors {fixed['errors']}",
          flush=True)
    return {"name": name, "fixed": fixed, "sustained": sustained, "ladder": ladder, "closed": closed}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="short steps (≈ 2 min)")
    ap.add_argument("--json", metavar="PATH", help="write the raw figures as JSON")
    ap.add_argument("--bundle", type=Path, help="bundle directory (default: built from data/06_models)")
    ap.add_argument("--skip-mlflow", action="store_true", help="leave out the mlflow models serve peer")
    ap.add_argument("--load", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.load:
        return load_main(args)

    from fusion.serving.auth import mint_token

    load_before = os.getloadavg()[0]  # other work on the machine inflates every figure: say how much there was
    tmp = Path(tempfile.mkdtemp(prefix="fusion-bench-serving-"))
    bundle = args.bundle or build_bundle(tmp)
    body = instance_body()
    token = mint_token(SECRET, "bench", "fusion", "fusion", ttl_s=3600)
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("FUSION_")}
    base_env.update({"DO_NOT_TRACK": "true", "FUSION_JWT_SECRET": SECRET, "PATH": f"{BIN}:{os.environ.get('PATH', '')}"})
    fusion_target = {"host": "127.0.0.1", "path": "/v1/predict", "body": body,
                     "headers": {"Authorization": f"Bearer {token}"}}
    results = []

    port = free_port()
    proc = start([str(BIN / "fusion"), "serve", str(bundle), "--port", str(port), "--log-level", "warning"], base_env,
                 f"http://127.0.0.1:{port}/readyz")
    try:
        results.append(measure("fusion serve, uncached", {**fusion_target, "port": port, "marker": '"cached":true'},
                               args.quick))
    finally:
        stop_group(proc)

    rport = free_port()
    redis = subprocess.Popen(["redis-server", "--port", str(rport), "--bind", "127.0.0.1", "--save", "",
                              "--appendonly", "no"], stdout=subprocess.DEVNULL, start_new_session=True)
    port = free_port()
    try:
        proc = start([str(BIN / "fusion"), "serve", str(bundle), "--port", str(port), "--log-level", "warning"],
                     {**base_env, "FUSION_REDIS_URL": f"redis://127.0.0.1:{rport}/0"}, f"http://127.0.0.1:{port}/readyz")
        try:
            results.append(measure("fusion serve, Redis cache", {**fusion_target, "port": port,
                                                                  "marker": '"cached":true'}, args.quick))
        finally:
            stop_group(proc)
    finally:
        stop_group(redis)

    if not args.skip_mlflow:
        model_path = save_pyfunc(bundle, tmp)
        port = free_port()
        proc = start([str(BIN / "mlflow"), "models", "serve", "-m", str(model_path), "--env-manager", "local",
                      "-h", "127.0.0.1", "-p", str(port), "-w", "1"], base_env, f"http://127.0.0.1:{port}/ping")
        try:
            # MLflow turns an {"instances": [...]} body into columns the pyfunc cannot read back into instances;
            # dataframe_records (one record per instance: series_id, channels) is its documented equivalent
            records = json.dumps({"dataframe_records": json.loads(body)["instances"]})
            results.append(measure("mlflow models serve (pyfunc)", {"host": "127.0.0.1", "port": port,
                                                                    "path": "/invocations", "body": records,
                                                                    "headers": {}, "marker": "predictions"},
                                   args.quick))
        finally:
            stop_group(proc)

    hit = lambda r: f"{r['closed']['marked'] / max(r['closed']['rps'] * (2.0 if args.quick else 5.0), 1):.0%}"  # noqa: E731
    rows = [[r["name"], r["fixed"]["p50_ms"], r["fixed"]["p99_ms"], f"{r['fixed']['errors']}/{r['fixed']['sent']}",
             r["sustained"], round(r["closed"]["rps"]), hit(r) if "Redis" in r["name"] else "-"] for r in results]
    mlflow_rps = next((r["closed"]["rps"] for r in results if r["name"].startswith("mlflow")), None)
    ratio = "" if not mlflow_rps else (
        f"\n\nfusion serve uncached / mlflow models serve (closed loop): "
        f"{results[0]['closed']['rps'] / mlflow_rps:.1f}x; cached: {results[1]['closed']['rps'] / mlflow_rps:.1f}x.")
    md = ("## Serving: fusion serve against mlflow models serve\n\n"
          "One worker each; load from a second process on loopback; one instance of 6 channels x 256 samples "
          "(≈ 31 KB JSON) per request; latency from the scheduled send time. `sustained` = highest offered rate of "
          f"the ladder with every request answered 200 and p99 ≤ {SUSTAINED_P99_MS:.0f} ms; `closed loop` = 8 "
          "connections back to back. The client shares the machine's cores with the server. "
          f"Load average (1 min) before the run: {load_before:.1f}, after: {os.getloadavg()[0]:.1f}."
          + (" `--quick` run." if args.quick else "") + "\n\n"
          + table(["server", f"p50 ms @ {FIXED_RATE}/s", f"p99 ms @ {FIXED_RATE}/s", f"unanswered @ {FIXED_RATE}/s",
                   "sustained req/s", "closed loop req/s", "cache hits"], rows) + ratio)
    write_section("serving", md)
    write_json(args.json, {"results": results, "quick": args.quick})
    print(md)


if __name__ == "__main__":
    main()
