"""The fast path: `POST /v1/predict` as a plain ASGI endpoint, reached through a small pure-ASGI dispatcher in front of
the FastAPI app.

Why: FastAPI's per-request machinery (its middleware stack: errors, body limit, telemetry, exceptions; the router's
regex walk; `Request` and `Response` objects) is a large share of a cached prediction: measured in process, a cached
answer takes ≈ 120 µs through `FastPath` and ≈ 155 µs through FastAPI's routing, of the ≈ 270-300 µs of server CPU a
whole request costs under uvicorn. So the app is `ObserveMiddleware(FastPath(api, [predict_route]))`: `FastPath`
sends a request whose method and path are those of a fast route straight to that route's endpoint, and everything
else (the other routes, 404s, the lifespan) to FastAPI. The fast route is also one of FastAPI's routes (a `FastRoute`,
a Starlette route whose endpoint is the ASGI class `PredictEndpoint`), so the FastAPI app alone answers it the same way (and
answers 405 to other methods); its OpenAPI entry is declared in `fusion.serving.schemas`. Errors of the endpoint get
the answers of the one mapping (`fusion.serving.responses`) that FastAPI's exception handlers use too.
Documented in nbs/53_serving_app.ipynb.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

import orjson
from starlette.exceptions import HTTPException
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from fusion.serving.deps import verify_authorization
from fusion.serving.observe import TRACE_ID, Metrics
from fusion.serving.responses import error_response
from fusion.serving.service import Service

__all__ = ["FastRoute", "FastPath", "PredictEndpoint", "read_body"]

_JSON = (b"content-type", b"application/json")


class FastRoute(Route):
    """A Starlette route that puts itself into `scope["route"]` when it matches, fully or by path only (405), as
    FastAPI's own routes do: `ObserveMiddleware` labels a request by that route's path, however it was reached."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child_scope = super().matches(scope)
        return match, child_scope if match is Match.NONE else {**child_scope, "route": self}


class FastPath:
    """A pure-ASGI dispatcher in front of `app`: an HTTP request whose method and path are those of one of `routes` is
    handled by that route directly; every other request, and the lifespan, goes to `app`. Like Starlette's router it
    puts the route into `scope["route"]`, where `ObserveMiddleware` reads the route label of its metrics."""

    def __init__(self, app: ASGIApp, routes: Iterable[Route]):  # routes: exact paths, no path parameters
        self.app = app
        self.routes = {(method, route.path): route for route in routes for method in route.methods or ()}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self.routes.get((scope["method"], scope["path"])) if scope["type"] == "http" else None
        if route is None:
            return await self.app(scope, receive, send)
        scope["route"] = route
        await route.handle(scope, receive, send)


async def read_body(receive: Callable[[], Awaitable[dict]], declared: bytes | None, limit: int) -> bytes:
    "The body of an ASGI request, or 413 as soon as it exceeds `limit` bytes (before reading when Content-Length says so)."
    if declared and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, detail=f"request body of {declared.decode()} bytes exceeds the limit of {limit} bytes")
    body = bytearray()
    while True:
        message = await receive()
        body += message.get("body", b"")
        if len(body) > limit:
            raise HTTPException(413, detail=f"request body exceeds the limit of {limit} bytes")
        if not message.get("more_body"):  # the last chunk, or http.disconnect
            return bytes(body)


class PredictEndpoint:
    """`POST /v1/predict` as an ASGI app: check the bearer token, read the body (size-limited), `Service.predict`,
    answer with orjson. No dependency resolution, no `Request` or `Response` object on the way to a 200."""

    def __init__(self, service: Service, metrics: Metrics):
        self.service = service
        self.model = {"name": service.bundle.name, "version": service.bundle.version}
        self.cached, self.fresh = metrics.predictions.labels("true"), metrics.predictions.labels("false")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            out = await self.answer(scope, receive)
        except Exception as exc:  # noqa: BLE001 - every error gets the one mapping's answer, as in FastAPI's handlers
            return await error_response(exc, scope["path"])(scope, receive, send)
        await send({"type": "http.response.start", "status": 200,
                    "headers": [_JSON, (b"content-length", b"%d" % len(out))]})
        await send({"type": "http.response.body", "body": out})

    async def answer(self, scope: Scope, receive: Receive) -> bytes:
        "The JSON body of the 200 answer; raises what the token check, the body limit and the service raise."
        headers = dict(scope["headers"])
        verify_authorization(self.service.verifier, headers.get(b"authorization", b"").decode("latin-1"))
        body = await read_body(receive, headers.get(b"content-length"), self.service.settings.max_body_bytes)
        predictions = await self.service.predict(body)
        cached = sum(p["cached"] for p in predictions)
        if cached:
            self.cached.inc(cached)
        if cached < len(predictions):
            self.fresh.inc(len(predictions) - cached)
        return orjson.dumps({"predictions": predictions, "model": self.model, "trace_id": TRACE_ID.get()})
