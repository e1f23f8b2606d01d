"""Observability of every route: W3C trace context, Prometheus metrics under the names of `fusion.names`, JSON logs."""

from __future__ import annotations

import json
import logging

import pytest
from fastapi.testclient import TestClient

from fusion.names import METRIC_LATENCY, METRIC_REQUESTS
from fusion.serving.app import create_api
from fusion.serving.fastpath import FastPath
from fusion.serving.observe import TRACE_ID, JsonFormatter, Metrics, ObserveMiddleware, parse_traceparent
from fusion.serving.routes import predict_route

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.mark.parametrize("value, trace", [
    (f"00-{TRACE}-00f067aa0ba902b7-01", TRACE),
    (f" 00-{TRACE.upper()}-00f067aa0ba902b7-00 ", TRACE),
    (f"ff-{TRACE}-00f067aa0ba902b7-01", None),  # version ff is invalid
    ("00-" + "0" * 32 + "-00f067aa0ba902b7-01", None),
    (f"00-{TRACE}-" + "0" * 16 + "-01", None),
    (f"00-{TRACE}-00f067aa0ba902b7", None),
    (None, None),
])
def test_parse_traceparent(value, trace):
    assert parse_traceparent(value) == trace


def test_log_lines_are_json_with_the_trace_id():
    record = logging.LogRecord("fusion.serving", logging.INFO, __file__, 1, "request", None, None)
    record.status, record.route = 200, "/v1/predict"
    token = TRACE_ID.set(TRACE)
    try:
        line = json.loads(JsonFormatter().format(record))
    finally:
        TRACE_ID.reset(token)
    assert (line["msg"], line["level"], line["trace_id"]) == ("request", "info", TRACE)
    assert (line["status"], line["route"]) == (200, "/v1/predict")


def test_every_route_is_traced_counted_and_logged(service, auth, caplog):
    metrics = Metrics({"name": "test"}, service.cache_stats)
    predict = predict_route(service, metrics)
    app = ObserveMiddleware(FastPath(create_api(service, metrics, predict), [predict]), metrics)
    with TestClient(app) as c, caplog.at_level(logging.INFO, logger="fusion.serving"):
        responses = [c.post("/v1/predict", json={}, headers={"traceparent": f"00-{TRACE}-00f067aa0ba902b7-01"}),
                     c.post("/v1/predict", json={"instances": []}, headers=auth), c.get("/v1/predict"),
                     c.get("/healthz"), c.get("/nowhere")]
        text = c.get("/metrics").text
    seen = [("POST", "/v1/predict", 401), ("POST", "/v1/predict", 422), ("GET", "/v1/predict", 405),
            ("GET", "/healthz", 200), ("GET", "unmatched", 404)]
    assert [r.status_code for r in responses] == [status for *_, status in seen]
    assert all(r.headers["traceparent"].startswith("00-") for r in responses)
    assert responses[0].headers["traceparent"].startswith(f"00-{TRACE}-")
    for method, route, status in seen:
        assert f'{METRIC_REQUESTS}{{method="{method}",route="{route}",status="{status}"}} 1.0' in text
    assert f'{METRIC_LATENCY}_count{{route="/healthz"}} 1.0' in text
    logged = [(r.method, r.route, r.status) for r in caplog.records if r.msg == "request"]
    assert logged[:5] == seen
