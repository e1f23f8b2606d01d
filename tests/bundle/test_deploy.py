"""The bundle's deployment files pass the tools that judge them; the dashboard queries metrics the server exports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from fusion.config import Settings
from fusion.bundle.golden import compare_golden
from fusion.names import METRIC_CACHE_HITS, METRIC_CACHE_MISSES, METRIC_LATENCY, METRIC_REQUESTS
from fusion.serving.app import create_app
from fusion.serving.auth import mint_token

BIN = Path(sys.executable).parent
SECRET = "export-tests-secret-" + "x" * 24


def _run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_dockerfile_passes_hadolint(exported_run):
    res = _run([str(BIN / "hadolint"), "Dockerfile"], exported_run.bundle)
    assert res.returncode == 0, res.stdout + res.stderr
    text = (exported_run.bundle / "Dockerfile").read_text()
    assert "ARG BASE_IMAGE=python:3.11-slim" in text and "USER 10001:10001" in text and "HEALTHCHECK" in text
    assert "--no-index --find-links /srv/bundle/wheelhouse" in text


def test_hadolint_catches_a_bad_dockerfile(tmp_path):
    (tmp_path / "Dockerfile").write_text("FROM python:latest\nRUN pip install fastapi\nCMD python app.py\n")
    res = _run([str(BIN / "hadolint"), "Dockerfile"], tmp_path)
    assert res.returncode != 0 and "DL3007" in res.stdout and "DL3013" in res.stdout, res.stdout


@pytest.mark.slow
def test_k8s_manifests_pass_kubernetes_validate(exported_run):
    files = sorted(str(p) for p in (exported_run.bundle / "k8s").glob("*.yaml"))
    assert [Path(f).name for f in files] == ["deployment.yaml", "hpa.yaml", "networkpolicy.yaml", "pdb.yaml",
                                             "service.yaml"]
    res = _run([str(BIN / "kubernetes-validate"), "--strict", *files], exported_run.bundle)
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.count("passed for resource") == 5, res.stdout


@pytest.mark.slow
def test_kubernetes_validate_catches_a_bad_manifest(exported_run, tmp_path):
    bad = (exported_run.bundle / "k8s/deployment.yaml").read_text().replace("readinessProbe:", "readinesProbe:")
    (tmp_path / "deployment.yaml").write_text(bad)
    res = _run([str(BIN / "kubernetes-validate"), "--strict", "deployment.yaml"], tmp_path)
    assert res.returncode != 0 and "readinesProbe" in res.stdout + res.stderr


@pytest.mark.slow
def test_dashboard_queries_metrics_the_server_exports(exported_run):
    dash = json.loads((exported_run.bundle / "grafana/dashboard.json").read_text())
    assert [p["title"] for p in dash["panels"]] == ["Requests per second by route", "Latency (/v1/predict)",
                                                   "Error rate (5xx and 4xx share)", "Cache hit ratio"]
    assert dash["panels"][1]["type"] == "heatmap"
    settings = Settings(jwt_secret=SECRET, project_root=exported_run.project)
    token = mint_token(SECRET, "tests", settings.jwt_audience, settings.jwt_issuer)
    inputs = json.loads((exported_run.bundle / "golden/inputs.json").read_text())
    with TestClient(create_app(exported_run.bundle, settings)) as client:
        r = client.post("/v1/predict", json={"instances": inputs["instances"][:2]},
                        headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200, r.text
        metrics = client.get("/metrics").text
    for name in (METRIC_REQUESTS, f"{METRIC_LATENCY}_bucket", METRIC_CACHE_HITS, METRIC_CACHE_MISSES):
        assert f"\n{name}" in metrics, name
    exprs = " ".join(t["expr"] for p in dash["panels"] for t in p["targets"])
    for name in (METRIC_REQUESTS, f"{METRIC_LATENCY}_bucket", METRIC_CACHE_HITS, METRIC_CACHE_MISSES):
        assert name in exprs, name
    assert 'route="/v1/predict"' in exprs and 'route="/v1/predict"' in metrics


@pytest.mark.slow
def test_the_mlflow_pyfunc_loads_and_predicts_the_golden_cases(exported_run):
    import mlflow
    from mlflow import MlflowClient

    from fusion.names import TAG_BUNDLE, TAG_PYFUNC

    man = json.loads((exported_run.bundle / "MANIFEST.json").read_text())
    client = MlflowClient(tracking_uri=exported_run.tracking_uri)
    tags = client.get_run(man["mlflow_run_id"]).data.tags
    assert tags[TAG_BUNDLE] == str(exported_run.bundle)
    artifacts = {a.path for a in client.list_artifacts(man["mlflow_run_id"], "golden")}
    assert artifacts == {"golden/inputs.json", "golden/outputs.json"}
    mlflow.set_tracking_uri(exported_run.tracking_uri)
    model = mlflow.pyfunc.load_model(tags[TAG_PYFUNC])
    local = Path(mlflow.artifacts.download_artifacts(tags[TAG_PYFUNC]))
    assert not [p.name for p in local.rglob("*") if p.suffix in {".pkl", ".pickle", ".cloudpickle"}]
    assert "pyfunc_model.py" in (local / "MLmodel").read_text()  # models from code: the code file, not a pickle
    inputs = json.loads((exported_run.bundle / "golden/inputs.json").read_text())
    expected = json.loads((exported_run.bundle / "golden/outputs.json").read_text())
    frame = model.predict(inputs)
    labels = json.loads((exported_run.bundle / "labels.json").read_text())
    assert list(frame.columns) == ["series_id", "label", *(f"p_{lab}" for lab in labels)]
    got = [{"series_id": r["series_id"], "label": r["label"], "probabilities": {lab: r[f"p_{lab}"] for lab in labels}}
           for _, r in frame.iterrows()]
    assert compare_golden(expected, {"predictions": got}) == []
