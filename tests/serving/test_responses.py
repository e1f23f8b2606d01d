"""The one error mapping: domain errors, HTTP exceptions and the unexpected, from the fast path and FastAPI's handlers."""

from __future__ import annotations

import json
import logging

import pytest
from fastapi.testclient import TestClient
from starlette.exceptions import HTTPException

from fusion.errors import (BundleIntegrityError, ConfigError, DataValidationError, EventPublishError, FeatureSpecError,
                           FusionError)
from fusion.serving.app import create_api
from fusion.serving.observe import TRACE_ID, Metrics
from fusion.serving.responses import error_response
from fusion.serving.routes import predict_route

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def _answer(exc: Exception) -> tuple[int, dict, dict]:
    token = TRACE_ID.set(TRACE)
    try:
        r = error_response(exc, "/somewhere")
    finally:
        TRACE_ID.reset(token)
    return r.status_code, json.loads(r.body), {k: v for k, v in r.headers.items() if k == "www-authenticate"}


@pytest.mark.parametrize("exc, status, detail", [
    (DataValidationError("instances[0] (series_id 'a'): too short"), 422, "instances[0] (series_id 'a'): too short"),
    (FeatureSpecError("window must be > 1, got 0"), 422, "window must be > 1, got 0"),
    (ConfigError("no key"), 500, f"internal error (ConfigError); trace id {TRACE}"),
    (BundleIntegrityError("sha256 mismatch"), 500, f"internal error (BundleIntegrityError); trace id {TRACE}"),
    (EventPublishError("broker down"), 500, f"internal error (EventPublishError); trace id {TRACE}"),
    (RuntimeError("secret internals"), 500, f"internal error (RuntimeError); trace id {TRACE}"),
    (HTTPException(413, "too big"), 413, "too big"),
], ids=["data", "spec", "config", "bundle", "other-fusion-error", "unexpected", "http"])
def test_each_error_gets_its_status_and_detail(exc, status, detail):
    assert _answer(exc)[:2] == (status, {"detail": detail})


def test_http_exceptions_keep_their_headers_and_500s_are_logged_not_told(caplog):
    assert _answer(HTTPException(401, "no", headers={"WWW-Authenticate": "Bearer"}))[2] == {"www-authenticate": "Bearer"}
    with caplog.at_level(logging.ERROR, logger="fusion.serving"):
        _, body, _ = _answer(RuntimeError("the database password is hunter2"))
    assert "hunter2" not in body["detail"]
    (record,) = caplog.records
    assert (record.msg, record.path, str(record.exc_info[1])) == ("request failed", "/somewhere",
                                                                  "the database password is hunter2")


def test_fastapi_routes_get_the_same_answers(service):
    metrics = Metrics({"name": "test"}, service.cache_stats)
    api = create_api(service, metrics, predict_route(service, metrics))
    errors = {"data": DataValidationError("bad rows"), "fusion": FusionError("broken"), "other": KeyError("k")}

    async def boom(kind: str):
        raise errors[kind]

    api.add_api_route("/boom/{kind}", boom)
    with TestClient(api, raise_server_exceptions=False) as c:
        for kind, exc in errors.items():
            r = c.get(f"/boom/{kind}")
            status, body, _ = _answer(exc)
            assert (r.status_code, r.json()["detail"].split("; trace id")[0]) == (status, body["detail"].split("; trace id")[0])
        r = c.get("/nowhere")
        assert (r.status_code, r.json()) == (404, {"detail": "Not Found"})
