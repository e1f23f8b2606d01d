"""A real `fusion serve` (uvicorn on a loopback port) with a real redis-server: cache, Redis failures, auth, CLI."""

from __future__ import annotations

import signal
import socket
import subprocess
import threading
import time

import httpx
import orjson
import pytest
import redis

from .conftest import BIN, SECRET, serve_env, start_server
from fusion.config import free_port

from tests.support.models import random_instance
from tests.support.project import ROOT

from .fixtures import attack_tokens

pytestmark = pytest.mark.slow


def _predict(c: httpx.Client, auth, instances) -> httpx.Response:
    return c.post("/v1/predict", content=orjson.dumps({"instances": instances}),
                  headers={**auth, "Content-Type": "application/json"})


def _metric(c: httpx.Client, name: str) -> float:
    line = next(x for x in c.get("/metrics").text.splitlines() if x.startswith(name + " "))
    return float(line.split()[-1])


def test_second_identical_request_is_cached(live, auth):
    with httpx.Client(base_url=live, timeout=5) as c:
        inst = random_instance("first", seed=101)
        a = _predict(c, auth, [inst]).json()["predictions"][0]
        deadline = time.monotonic() + 5  # the cache write happens just after the first response
        while time.monotonic() < deadline:
            b = _predict(c, auth, [{**inst, "series_id": "second"}]).json()["predictions"][0]
            if b["cached"]:
                break
            time.sleep(0.05)
        assert (a["cached"], b["cached"], b["series_id"]) == (False, True, "second")
        assert (b["label"], b["probabilities"]) == (a["label"], a["probabilities"])
        assert _metric(c, "fusion_cache_hits_total") >= 1 and _metric(c, "fusion_cache_enabled") == 1


def test_redis_killed_mid_stream_fails_no_request_and_the_breaker_recloses(live, auth, redis_server):
    pool = [random_instance(f"p{i}", seed=200 + i) for i in range(5)]
    statuses, cached = [], []
    with httpx.Client(base_url=live, timeout=5) as c:
        for i in range(60):  # warm the cache
            r = _predict(c, auth, [pool[i % 5]])
            statuses.append(r.status_code)
        redis_server.kill()
        t0 = time.monotonic()
        for i in range(150):
            r = _predict(c, auth, [pool[i % 5]])
            statuses.append(r.status_code)
            cached.append(r.json()["predictions"][0]["cached"] if r.status_code == 200 else None)
        down_s = time.monotonic() - t0
        assert _metric(c, "fusion_cache_errors_total") >= 1
        assert _metric(c, "fusion_cache_breaker_open") == 1
        redis_server.start()
        recovered = False
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not recovered:
            r = _predict(c, auth, [pool[0]])
            statuses.append(r.status_code)
            recovered = r.status_code == 200 and r.json()["predictions"][0]["cached"]
            time.sleep(0.05)
        assert _metric(c, "fusion_cache_breaker_open") == 0
    assert set(statuses) == {200}, [s for s in statuses if s != 200]
    assert cached.count(True) == 0, "answers from a dead Redis"
    assert down_s < 150 * 0.1, f"150 requests took {down_s:.1f} s with Redis down: the breaker is not saving time"
    assert recovered, "the breaker did not re-close after Redis came back"


def test_slow_redis_costs_one_timeout_not_an_error(live, auth, redis_server):
    slept = []
    blocker = threading.Thread(target=lambda: slept.append(
        redis.Redis(port=redis_server.port).execute_command("DEBUG", "SLEEP", "1.5")))
    with httpx.Client(base_url=live, timeout=5) as c:
        blocker.start()
        time.sleep(0.1)  # Redis is now asleep for 1.5 s
        t0 = time.monotonic()
        responses = [_predict(c, auth, [random_instance("slow", seed=300 + i)]) for i in range(5)]
        took = time.monotonic() - t0
    blocker.join()
    assert slept == [b"OK"], "Redis did not sleep"
    assert [r.status_code for r in responses] == [200] * 5
    assert not any(r.json()["predictions"][0]["cached"] for r in responses)
    assert took < 1.0, f"5 requests took {took:.2f} s against a sleeping Redis"


def test_jwt_attack_matrix_over_http(live, rsa_keys):
    with httpx.Client(base_url=live, timeout=5) as c:
        for name, tok in attack_tokens(rsa_keys, SECRET).items():
            headers = {} if tok is None else {"Authorization": f"Bearer {tok}"}
            r = _predict(c, headers, [random_instance("s")])
            assert (r.status_code, r.headers.get("www-authenticate", "")[:6]) == (401, "Bearer"), name


def test_oversize_and_malformed_over_http(live, auth):
    with httpx.Client(base_url=live, timeout=10) as c:
        r = c.post("/v1/predict", content=b'{"instances": [' + b"0," * 600_000 + b"0]}",
                   headers={**auth, "Content-Type": "application/json"})
        assert r.status_code == 413
        r = c.post("/v1/predict", content=b'{"instances": [{"series_id": "a", "channels": {"ax": [Infinity]}}]}',
                   headers={**auth, "Content-Type": "application/json"})
        assert r.status_code == 422 and "not valid JSON" in r.json()["detail"]


def test_tampered_bundle_refuses_to_start(bundle_copy, rsa_keys):
    (bundle_copy / "labels.json").write_text('["evil"]\n')
    done = subprocess.run([str(BIN / "fusion"), "serve", str(bundle_copy), "--port", str(free_port())], cwd=ROOT,
                          env=serve_env(rsa_keys[1]), capture_output=True, text=True, timeout=120)
    assert done.returncode == 3, done.stderr
    assert "refusing to start" in done.stderr and "sha256 mismatch in ['labels.json']" in done.stderr


def test_token_command_prints_a_token_the_server_accepts(live, tmp_path):
    # run outside any fusion project, as in a container
    done = subprocess.run([str(BIN / "fusion"), "token", "--sub", "cli-user", "--ttl", "60"], cwd=tmp_path,
                          env={"FUSION_JWT_SECRET": SECRET, "PATH": str(BIN)}, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    tok = done.stdout.strip()
    assert done.stdout == tok + "\n" and tok.count(".") == 2
    r = httpx.get(f"{live}/v1/model", headers={"Authorization": f"Bearer {tok}"})
    assert r.status_code == 200 and r.json()["name"] == "fusion-classifier"


def test_sigterm_drains_in_flight_requests(bundle_dir, rsa_keys, auth):
    port = free_port()
    proc = start_server(bundle_dir, serve_env(rsa_keys[1], FUSION_MAX_BODY_BYTES=str(64 << 20)), port)
    body = orjson.dumps({"instances": [random_instance(f"b{i}", length=1024, seed=i) for i in range(256)]})  # ≈ 12 MB
    head = (f"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {auth['Authorization']}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        # sendall of 12 MB returns only once the server has read most of it: the request is in flight
        sock.sendall(head + body)
        proc.send_signal(signal.SIGTERM)
        response = b""
        while chunk := sock.recv(1 << 16):
            response += chunk
    # uvicorn re-raises SIGTERM after its graceful shutdown, so the exit status is -SIGTERM
    assert proc.wait(timeout=30) in (0, -signal.SIGTERM)
    status_line, _, rest = response.partition(b"\r\n")
    assert status_line == b"HTTP/1.1 200 OK", response[:500]
    assert len(orjson.loads(rest.partition(b"\r\n\r\n")[2])["predictions"]) == 256
    with pytest.raises(httpx.ConnectError):  # and nothing new is accepted
        httpx.get(f"http://127.0.0.1:{port}/healthz")


def test_two_workers_serve_the_golden_cases(bundle_dir, rsa_keys, auth):
    port = free_port()
    proc = start_server(bundle_dir, serve_env(rsa_keys[1]), port, "--workers", "2", "--no-compile")
    try:
        golden = orjson.loads((bundle_dir / "golden" / "outputs.json").read_bytes())["predictions"]
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as c:
            for _ in range(6):  # new connections, spread over both workers
                r = c.post("/v1/predict", content=(bundle_dir / "golden" / "inputs.json").read_bytes(),
                           headers={**auth, "Content-Type": "application/json", "Connection": "close"})
                assert r.status_code == 200, r.text
                assert [p["label"] for p in r.json()["predictions"]] == [p["label"] for p in golden]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) in (0, -signal.SIGTERM)


def test_compiled_feature_path_gives_the_golden_outputs(bundle_dir, rsa_keys, auth):
    port = free_port()
    proc = start_server(bundle_dir, serve_env(rsa_keys[1]), port, "--compile")
    try:
        golden = orjson.loads((bundle_dir / "golden" / "outputs.json").read_bytes())["predictions"]
        r = httpx.post(f"http://127.0.0.1:{port}/v1/predict", content=(bundle_dir / "golden" / "inputs.json").read_bytes(),
                       headers={**auth, "Content-Type": "application/json"}, timeout=10)
        assert r.status_code == 200, r.text
        for got, want in zip(r.json()["predictions"], golden, strict=True):
            assert got["label"] == want["label"]
            assert max(abs(got["probabilities"][k] - p) for k, p in want["probabilities"].items()) <= 1e-6
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) in (0, -signal.SIGTERM)
