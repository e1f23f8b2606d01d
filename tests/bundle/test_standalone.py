"""`fusion verify`: its HTTP checks against an in-process server, and once end to end from a fresh venv."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import uvicorn

from fusion.bundle.layout import GOLDEN_INPUTS, GOLDEN_OUTPUTS
from fusion.bundle.standalone import http_checks, wait_ready
from fusion.bundle.verify import load_bundle
from fusion.config import Settings, free_port
from fusion.serving.app import create_app
from fusion.serving.auth import mint_token

BIN = Path(sys.executable).parent
SECRET = "verify-tests-secret-" + "y" * 24
LIMIT = 1_048_576


@pytest.fixture(scope="module")
def server(exported_run):
    "The bundle's app under uvicorn in a thread on a free loopback port: (base url, token)."
    settings = Settings(jwt_secret=SECRET, project_root=exported_run.project)
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(create_app(exported_run.bundle, settings), host="127.0.0.1", port=port,
                                        log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    wait_ready(base, thread.is_alive, timeout_s=60)
    yield base, mint_token(SECRET, "tests", settings.jwt_audience, settings.jwt_issuer)
    srv.should_exit = True
    thread.join(timeout=20)


@pytest.fixture(scope="module")
def golden(exported_run) -> tuple[dict, dict]:
    "The run's verified golden (inputs, outputs)."
    bundle = load_bundle(exported_run.bundle)
    return bundle.json(GOLDEN_INPUTS), bundle.json(GOLDEN_OUTPUTS)


@pytest.mark.slow
def test_http_checks_pass_on_the_true_bundle(server, golden):
    base, token = server
    t = time.perf_counter()
    assert http_checks(base, *golden, token, LIMIT) == (28, [])
    assert time.perf_counter() - t < 60


@pytest.mark.slow
def test_http_checks_name_what_differs(server, golden):
    base, token = server
    inputs, outputs = golden
    wrong = {**outputs, "predictions": [dict(p, probabilities=dict(p["probabilities"])) for p in outputs["predictions"]]}
    first = wrong["predictions"][0]
    first["probabilities"][first["label"]] += 1e-5
    wrong["predictions"][1]["label"] = "nope"
    cases, problems = http_checks(base, inputs, wrong, token, LIMIT)
    assert cases == 28 and len(problems) == 2, problems
    assert problems[0].startswith(f"series {first['series_id']!r}: p[{first['label']}] = ") and "> 1e-06" in problems[0]
    assert "expected 'nope'" in problems[1]
    _, problems = http_checks(base, inputs, outputs, "not-a-token", LIMIT)
    assert problems[0].startswith("POST /v1/predict of ") and "status 401" in problems[0]


@pytest.mark.slow
def test_verify_end_to_end_from_a_fresh_venv(exported_run):
    "The one real `fusion verify`: fresh venv, only the wheel and lock, `fusion serve`, golden, 401, 413 (~2 min)."
    res = subprocess.run([str(BIN / "fusion"), "verify", str(exported_run.bundle)], capture_output=True, text=True,
                         timeout=600, cwd=exported_run.project)
    assert res.returncode == 0, res.stdout + res.stderr[-3000:]
    assert res.stdout.strip().splitlines()[-1] == "verify: PASS (28 golden cases)"
