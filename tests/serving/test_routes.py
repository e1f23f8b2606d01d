"""The FastAPI routes of the inference API, on `create_api` alone: model, liveness, readiness, metrics, overrides."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from fusion.serving.app import create_api
from fusion.serving.deps import get_service
from fusion.serving.observe import Metrics
from fusion.serving.routes import predict_route
from fusion.serving.service import Service


@pytest.fixture
def api(service):
    metrics = Metrics({"name": "fusion-classifier", "version": "1"}, service.cache_stats)
    return create_api(service, metrics, predict_route(service, metrics))


def test_readiness_follows_the_lifespan_and_liveness_does_not(api, service):
    c = TestClient(api)  # no `with`: no lifespan, the model is not warmed up
    assert (c.get("/readyz").status_code, c.get("/readyz").json()) == (503, {"status": "not ready"})
    assert c.get("/healthz").json() == {"status": "ok"}
    with TestClient(api) as warmed:
        assert warmed.get("/readyz").json() == {"status": "ready", "model": "fusion-classifier", "version": "1"}
    assert not service.ready  # shut down


def test_model_describes_the_bundle_behind_a_token(api, auth, settings):
    with TestClient(api) as c:
        assert c.get("/v1/model").status_code == 401
        info = c.get("/v1/model", headers=auth).json()
    assert (info["name"], info["version"], info["max_body_bytes"]) == ("fusion-classifier", "1", settings.max_body_bytes)
    assert info["feature_spec"]["window"] == 128 and len(info["feature_spec_digest"]) == 64
    assert info["manifest"]["mlflow_run_id"] == "test"


def test_metrics_is_prometheus_text(api):
    with TestClient(api) as c:
        r = c.get("/metrics")
    assert r.headers["content-type"].startswith("text/plain; version=")
    assert 'fusion_model_info{name="fusion-classifier",version="1"} 1.0' in r.text


def test_the_service_dependency_can_be_overridden(api, service):
    idle = Service(service.bundle, service.settings, service.predictor, service.verifier)
    api.dependency_overrides[get_service] = lambda: idle
    with TestClient(api) as c:
        assert service.ready and c.get("/readyz").status_code == 503  # the route asked the override
        idle.ready = True
        assert c.get("/readyz").status_code == 200
