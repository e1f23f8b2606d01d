"""The logged pyfunc under MLflow's own scoring server: `mlflow models serve -m <uri> --env-manager local`, as the
README says, answers an `{"instances": [...]}` body (the body `fusion serve` takes) with the golden predictions."""

from __future__ import annotations

import json
import os
import subprocess
import urllib.error
import urllib.request

import pytest

from fusion.bundle.standalone import stop_group, wait_ready
from fusion.config import free_port
from fusion.names import TAG_PYFUNC
from tests.support.project import BIN

READY_S = 180  # mlflow models serve imports torch and loads the model before /ping answers


def post_json(url: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=120) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def wait_ping(base: str, proc: subprocess.Popen, log) -> None:
    "Wait for `mlflow models serve` to answer /ping (the same poll as `fusion verify`'s), failing with its log."
    try:
        wait_ready(base, lambda: proc.poll() is None, timeout_s=READY_S, path="/ping")
    except RuntimeError as err:
        pytest.fail(f"mlflow models serve: {err}: {log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def mlflow_server(exported_run, tmp_path_factory):
    "`mlflow models serve` of the run's logged pyfunc (its URI from the run's tag), on a free loopback port."
    from mlflow import MlflowClient

    man = json.loads((exported_run.bundle / "MANIFEST.json").read_text())
    uri = MlflowClient(tracking_uri=exported_run.tracking_uri).get_run(man["mlflow_run_id"]).data.tags[TAG_PYFUNC]
    port, log = free_port(), tmp_path_factory.mktemp("mlflow_serve") / "serve.log"
    env = {**exported_run.env, "MLFLOW_TRACKING_URI": exported_run.tracking_uri,
           "PATH": f"{BIN}{os.pathsep}{exported_run.env['PATH']}"}  # it execs uvicorn by name
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(BIN / "mlflow"), "models", "serve", "-m", uri, "--env-manager", "local",
                                 "-h", "127.0.0.1", "-p", str(port), "-w", "1"], cwd=exported_run.project, env=env,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_ping(f"http://127.0.0.1:{port}", proc, log)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_group(proc)


def golden(exported_run, n: int) -> tuple[list[dict], list[dict]]:
    "The first `n` golden inputs and outputs of the run's bundle."
    inputs = json.loads((exported_run.bundle / "golden" / "inputs.json").read_text())["instances"][:n]
    outputs = json.loads((exported_run.bundle / "golden" / "outputs.json").read_text())["predictions"][:n]
    return inputs, outputs


def assert_golden(rows: list[dict], expected: list[dict]) -> None:
    "MLflow's answer (one row per series: series_id, label, p_<label>...) matches the golden outputs within 1e-6."
    assert len(rows) == len(expected)
    for row, want in zip(rows, expected, strict=True):
        assert (row["series_id"], row["label"]) == (want["series_id"], want["label"])
        assert {k[2:]: v for k, v in row.items() if k.startswith("p_")} == pytest.approx(want["probabilities"], abs=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize(("key", "n"), [("instances", 3), ("dataframe_records", 2)])
def test_mlflow_models_serve_answers_the_documented_bodies(exported_run, mlflow_server, key, n):
    inputs, outputs = golden(exported_run, n)
    status, answer = post_json(f"{mlflow_server}/invocations", {key: inputs})
    assert status == 200, answer
    assert_golden(answer["predictions"], outputs)


@pytest.mark.slow
def test_a_bad_instance_is_refused_with_its_reason(exported_run, mlflow_server):
    inputs, _ = golden(exported_run, 1)
    status, answer = post_json(f"{mlflow_server}/invocations", {"instances": [{**inputs[0], "channels": [1.0]}]})
    assert status == 400, answer  # MLflow answers 400 with a generic message; the pyfunc's reason is in the trace
    assert f"DataValidationError: 'channels' of series {inputs[0]['series_id']!r} must be a dict" in answer["stack_trace"]
