"""The documented contract: the request schema from the feature spec, and `POST /v1/predict` in the OpenAPI document
although no FastAPI handler answers it."""

from __future__ import annotations

from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from fusion.serving.app import create_api
from fusion.serving.observe import Metrics
from fusion.serving.routes import PREDICT_PATH, predict_route
from fusion.serving.schemas import MAX_SAMPLES, PredictResponse, request_schema


def test_request_schema_follows_the_feature_spec(service):
    schema = request_schema(service.predictor, max_instances=3)
    instances = schema["properties"]["instances"]
    channels = instances["items"]["properties"]["channels"]
    assert (instances["minItems"], instances["maxItems"]) == (1, 3)
    assert channels["required"] == list(service.predictor.channels) == ["ax", "ay", "az", "wx", "wy", "wz"]
    assert (channels["properties"]["ax"]["minItems"], channels["properties"]["ax"]["maxItems"]) == (128, MAX_SAMPLES)
    assert schema["example"]["instances"][0]["series_id"] == "s1"


def _resolve(doc: dict, ref: str) -> dict:
    assert ref.startswith("#/components/schemas/"), ref
    return doc["components"]["schemas"][ref.rsplit("/", 1)[1]]


def test_openapi_documents_the_predict_route_completely(service):
    metrics = Metrics({"name": "test"}, service.cache_stats)
    api = create_api(service, metrics, predict_route(service, metrics))
    assert not [r for r in api.routes if isinstance(r, APIRoute) and r.path == PREDICT_PATH]  # no stand-in handler
    doc = TestClient(api).get("/openapi.json").json()
    op = doc["paths"][PREDICT_PATH]["post"]
    assert list(doc["paths"][PREDICT_PATH]) == ["post"] and op["tags"] == ["inference"]
    assert op["requestBody"]["required"] and op["requestBody"]["content"]["application/json"]["schema"] == \
        request_schema(service.predictor, service.settings.max_instances)
    assert sorted(op["responses"]) == ["200", "401", "413", "422"]
    ok = _resolve(doc, op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"])
    want = PredictResponse.model_json_schema(mode="serialization", ref_template="#/components/schemas/{model}")
    want.pop("$defs")
    assert ok == want and ok["required"] == ["predictions", "model", "trace_id"]
    _resolve(doc, ok["properties"]["predictions"]["items"]["$ref"])
    _resolve(doc, ok["properties"]["model"]["$ref"])
    for status in ("401", "413", "422"):
        assert _resolve(doc, op["responses"][status]["content"]["application/json"]["schema"]["$ref"])["required"] == \
            ["detail"]
    (scheme,) = op["security"][0]
    assert doc["components"]["securitySchemes"][scheme] == {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
        "description": "A JWT with exp, aud and iss (HS256 or RS256); `fusion token` mints one."}
    assert TestClient(api).get("/openapi.json").json() == doc  # built once, the same each time
