"""`create_app` in-process (TestClient), the whole stack: golden predictions, bodies that must be refused, auth,
operations, bundles that must not serve."""

from __future__ import annotations

import json
import time

import numpy as np
import orjson
import pytest
from fastapi.testclient import TestClient

from fusion.config import Settings
from fusion.errors import BundleIntegrityError, ConfigError
from fusion.serving.app import create_app

from .conftest import SECRET
from tests.support.models import random_instance
from tests.support.project import ROOT

from .fixtures import attack_tokens, hs256_with, make_token


@pytest.fixture(scope="module")
def client(bundle_dir, settings):
    with TestClient(create_app(bundle_dir, settings)) as c:
        yield c


def test_golden_inputs_give_golden_outputs(client, bundle_dir, auth):
    golden_in = (bundle_dir / "golden" / "inputs.json").read_bytes()
    golden_out = json.loads((bundle_dir / "golden" / "outputs.json").read_text())
    r = client.post("/v1/predict", content=golden_in, headers=auth)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == {"name": "fusion-classifier", "version": "1"}
    assert len(body["trace_id"]) == 32
    for got, want in zip(body["predictions"], golden_out["predictions"], strict=True):
        assert (got["series_id"], got["label"], got["cached"]) == (want["series_id"], want["label"], False)
        np.testing.assert_allclose(list(got["probabilities"].values()), list(want["probabilities"].values()), atol=1e-6)


def test_traceparent_is_continued(client, auth):
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    r = client.post("/v1/predict", json={"instances": [random_instance("s")]},
                    headers={**auth, "traceparent": f"00-{trace}-00f067aa0ba902b7-01"})
    assert r.json()["trace_id"] == trace
    assert r.headers["traceparent"].startswith(f"00-{trace}-") and not r.headers["traceparent"].endswith("00f067aa0ba902b7-01")
    fresh = client.post("/v1/predict", json={"instances": [random_instance("s")]},
                        headers={**auth, "traceparent": "00-" + "0" * 32 + "-00f067aa0ba902b7-01"}).json()["trace_id"]
    assert fresh != "0" * 32 and len(fresh) == 32  # an invalid traceparent starts a new trace


def _post(client, auth, body: bytes | str):
    return client.post("/v1/predict", content=body, headers={**auth, "Content-Type": "application/json"})


@pytest.mark.parametrize("body, message", [
    ("{not json", "request body is not valid JSON"),
    ('{"instances": [' + "[" * 5000 + "]" * 5000 + "]}", "request body is not valid JSON"),
    ('{"instances": [{"series_id": "a", "channels": {"ax": [NaN]}}]}', "request body is not valid JSON"),
    ('[1, 2]', "exactly the key 'instances', got list"),
    ('{"instances": [], "extra": 1}', "exactly the key 'instances', got ['extra', 'instances']"),
    ('{"instances": []}', "instances must be a non-empty list"),
    ('{"instances": [{"series_id": "a"}]}', "exactly 'series_id' and 'channels', got ['series_id']"),
], ids=["malformed", "deep", "nan-literal", "list", "extra-key", "empty", "no-channels"])
def test_bad_bodies_get_422_with_a_message(client, auth, body, message):
    r = _post(client, auth, body)
    assert r.status_code == 422, r.text
    assert message in r.json()["detail"]


def test_bad_instances_get_422_naming_the_instance(client, auth):
    good = random_instance("good")
    cases = {
        "missing channel(s) ['wz']": {**good, "channels": {k: v for k, v in good["channels"].items() if k != "wz"}},
        "unknown channel(s) ['temp']": {**good, "channels": {**good["channels"], "temp": [0.0] * 256}},
        "shorter than one window (128 samples)": random_instance("short", length=100),
        "contain NaN, inf": {**good, "channels": {**good["channels"], "ax": [1e39] * 256}},
        "unequal lengths": {**good, "channels": {**good["channels"], "ax": [0.0] * 255}},
        "must be a list of numbers": {**good, "channels": {**good["channels"], "ay": ["1"] * 256}},
    }
    for message, bad in cases.items():
        r = client.post("/v1/predict", json={"instances": [good, bad]}, headers=auth)
        assert r.status_code == 422 and message in r.json()["detail"] and "instances[1]" in r.json()["detail"], r.text
    zeros = {"series_id": "z", "channels": {c: [0] * 128 for c in good["channels"]}}
    r = client.post("/v1/predict", json={"instances": [zeros] * 257}, headers=auth)
    assert (r.status_code, r.json()["detail"]) == (422, "too many instances: 257 > 256")


def test_oversize_body_gets_413(client, auth, settings):
    big = orjson.dumps({"instances": [random_instance(f"s{i}", length=4096, seed=i) for i in range(12)]})
    assert len(big) > settings.max_body_bytes
    r = _post(client, auth, big)
    assert r.status_code == 413 and "exceeds the limit of 1048576 bytes" in r.json()["detail"]

    def chunks():  # no Content-Length: the limit is enforced while reading
        for i in range(0, len(big), 65536):
            yield big[i:i + 65536]
    r = client.post("/v1/predict", content=chunks(), headers={**auth, "Content-Type": "application/json"})
    assert r.status_code == 413 and "exceeds the limit" in r.json()["detail"]


def test_jwt_attack_matrix_gets_401(client, rsa_keys):
    for name, tok in attack_tokens(rsa_keys, SECRET).items():
        headers = {} if tok is None else {"Authorization": f"Bearer {tok}"}
        r = client.post("/v1/predict", json={"instances": [random_instance("s")]}, headers=headers)
        assert r.status_code == 401, (name, r.text)
        assert r.headers["www-authenticate"].startswith("Bearer"), name
        assert r.json()["detail"].startswith("not authenticated"), name
        assert client.get("/v1/model", headers=headers).status_code == 401, name
    ok = client.post("/v1/predict", json={"instances": [random_instance("s")]},
                     headers={"Authorization": f"Bearer {make_token(rsa_keys[0], alg='RS256')}"})
    assert ok.status_code == 200, ok.text


def test_hs_rs_confusion_with_only_a_public_key(bundle_dir, rsa_keys):
    app = create_app(bundle_dir, Settings(project_root=ROOT, jwt_public_key=rsa_keys[1]))
    claims = {"sub": "x", "aud": "fusion", "iss": "fusion", "exp": int(time.time()) + 60}
    with TestClient(app) as c:
        r = c.get("/v1/model", headers={"Authorization": f"Bearer {hs256_with(rsa_keys[1].encode(), claims)}"})
        assert r.status_code == 401 and "algorithm 'HS256' is not accepted; accepted: ['RS256']" in r.json()["detail"]
        assert c.get("/v1/model", headers={"Authorization": f"Bearer {make_token(rsa_keys[0], 'RS256')}"}).status_code == 200


def test_model_health_ready_and_metrics(client, auth, bundle_dir):
    info = client.get("/v1/model", headers=auth).json()
    assert info["labels"] == ["ABD", "ER", "FEL", "IR", "PEN", "ROW", "TRAP"]
    assert info["feature_spec"]["channels"] == ["ax", "ay", "az", "wx", "wy", "wz"]
    assert info["manifest"]["mlflow_run_id"] == "test" and info["manifest"]["files"] == 16
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json()["status"] == "ready"
    client.post("/v1/predict", json={"instances": [random_instance("m")]}, headers=auth)
    text = client.get("/metrics").text
    assert 'fusion_http_requests_total{method="POST",route="/v1/predict",status="200"}' in text
    assert 'fusion_http_request_duration_seconds_bucket{le="0.01",route="/v1/predict"}' in text
    assert 'fusion_model_info{bundle_digest="' in text and 'name="fusion-classifier"' in text
    assert "fusion_cache_enabled 0.0" in text and "fusion_cache_hits_total 0.0" in text
    assert client.get("/docs").status_code == 200
    schema = client.get("/openapi.json").json()
    body = schema["paths"]["/v1/predict"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["properties"]["instances"]["items"]["properties"]["channels"]["required"] == info["feature_spec"]["channels"]


def test_a_tampered_or_keyless_bundle_does_not_build_an_app(bundle_copy):
    with pytest.raises(ConfigError, match="FUSION_JWT_SECRET"):
        create_app(bundle_copy, Settings(project_root=ROOT))
    (bundle_copy / "model.json").write_text("{}")
    with pytest.raises(BundleIntegrityError, match=r"sha256 mismatch in \['model.json'\]"):
        create_app(bundle_copy, Settings(project_root=ROOT, jwt_secret=SECRET))
