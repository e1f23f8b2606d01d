"""The fast path: `FastPath` dispatches, `read_body` limits, and `PredictEndpoint` answers exactly as it does when
FastAPI's own routing reaches it."""

from __future__ import annotations

import asyncio
import contextlib

import orjson
import pytest
from fastapi.testclient import TestClient
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from fusion.serving.app import create_api
from fusion.serving.fastpath import FastPath, read_body
from fusion.serving.observe import Metrics
from fusion.serving.routes import predict_route

from tests.support.models import random_instance


class Fast:
    "An ASGI endpoint that says which route reached it."

    async def __call__(self, scope, receive, send):
        await PlainTextResponse(f"fast {scope['route'].path}")(scope, receive, send)


def _framework_app(events: list) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app):
        events.append("startup")
        yield

    async def anything(request):
        return PlainTextResponse(f"app {request.method} {request.url.path}")

    return Starlette(routes=[Route("/fast", anything, methods=["GET"]), Route("/{rest:path}", anything,
                                                                              methods=["GET", "POST"])],
                     lifespan=lifespan)


def test_fast_routes_skip_the_app_and_everything_else_reaches_it():
    events = []
    app = FastPath(_framework_app(events), [Route("/fast", Fast(), methods=["POST"])])
    with TestClient(app) as c:
        assert events == ["startup"]  # the lifespan goes through
        assert c.post("/fast").text == "fast /fast"
        assert c.get("/fast").text == "app GET /fast"  # another method: the app's
        assert c.post("/fast/").text == "app POST /fast/"  # exact paths only
        assert c.post("/other").text == "app POST /other"


def test_read_body_refuses_oversize_bodies_before_or_while_reading():
    chunks = [{"body": b"x" * 40, "more_body": True}, {"body": b"y" * 40, "more_body": False}]

    async def read(declared: bytes | None, limit: int) -> bytes:
        messages = iter(chunks)
        return await read_body(lambda: asyncio.sleep(0, next(messages)), declared, limit)

    assert asyncio.run(read(b"80", 100)) == b"x" * 40 + b"y" * 40
    with pytest.raises(HTTPException, match="request body of 101 bytes exceeds the limit of 100 bytes"):
        asyncio.run(read(b"101", 100))  # refused on Content-Length, before any chunk
    with pytest.raises(HTTPException, match="request body exceeds the limit of 60 bytes"):
        asyncio.run(read(None, 60))


@pytest.fixture
def both(service):
    "The same service behind the fast path and behind FastAPI's routing alone."
    metrics = Metrics({"name": "test"}, service.cache_stats)
    predict = predict_route(service, metrics)
    api = create_api(service, metrics, predict)
    with TestClient(FastPath(api, [predict])) as fast, TestClient(api) as routed:
        yield fast, routed


def _answers(client, headers: dict, body: bytes):
    r = client.post("/v1/predict", content=body, headers={"Content-Type": "application/json", **headers})
    data = r.json()
    data.pop("trace_id", None)
    for p in data.get("predictions", []):
        p.pop("cached")  # both clients share the service's cache: the second answer of a body is a cached one
    return r.status_code, data, r.headers.get("www-authenticate"), r.headers["content-type"]


def test_the_fast_path_answers_as_fastapi_routing_does(both, auth, settings):
    fast, routed = both
    good = orjson.dumps({"instances": [random_instance("s", seed=5)]})
    cases = {"ok": (auth, good), "no token": ({}, good), "bad token": ({"Authorization": "Bearer not.a.jwt"}, good),
             "invalid": (auth, b'{"instances": []}'), "not json": (auth, b"{x"),
             "oversize": (auth, b"0" * (settings.max_body_bytes + 1))}
    for name, (headers, body) in cases.items():
        assert _answers(fast, headers, body) == _answers(routed, headers, body), name
    statuses = {name: _answers(fast, headers, body)[0] for name, (headers, body) in cases.items()}
    assert statuses == {"ok": 200, "no token": 401, "bad token": 401, "invalid": 422, "not json": 422, "oversize": 413}
    assert _answers(fast, {}, good)[2] == 'Bearer error="invalid_token"'
    assert _answers(fast, auth, b"{x")[1]["detail"].startswith("request body is not valid JSON")
    for client in (fast, routed):  # another method reaches FastAPI, which knows the route: 405, not 404
        r = client.get("/v1/predict")
        assert (r.status_code, r.headers["allow"], r.json()) == (405, "POST", {"detail": "Method Not Allowed"})
