"""The FastAPI app of an export bundle: `create_app(bundle_dir, settings)`; routes, middleware, one error handler.

`POST /v1/predict` reads the body itself (size-limited) and has the `Predictor` decode and validate it
(`validate_json`: msgspec types the numbers while it parses, then one numpy conversion; no per-float pydantic),
answers cached instances from Redis and predicts the rest in one micro-batch per event-loop turn (cache reads too:
one Redis round trip per turn). The OpenAPI schema of the request is built from the bundle's feature spec (its
channels and window), so `/docs` and schemathesis see the real contract. Documented in nbs/53_serving_app.ipynb.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from fusion.config import Settings
from fusion.errors import BundleIntegrityError, ConfigError, DataValidationError, FeatureSpecError, FusionError
from fusion.inference.predictor import MAX_SERIES_ID, Predictor
from fusion.serving.auth import TokenVerifier
from fusion.bundle.verify import Bundle, load_bundle
from fusion.serving.cache import Cache, RedisCache, cache_key
from fusion.serving.deps import (BEARER_SECURITY, ClaimsDep, PredictorDep, ServiceDep, SettingsDep,
                                 verify_authorization)
from fusion.serving.observe import TRACE_ID, Metrics, ObserveMiddleware

__all__ = ["STATUS_OF", "MAX_SAMPLES", "Service", "MicroBatcher", "InferenceApp", "create_app", "request_schema"]

STATUS_OF: dict[type[FusionError], int] = {DataValidationError: 422, FeatureSpecError: 422, ConfigError: 500,
                                           BundleIntegrityError: 500}  # the rest of FusionError: 500
MAX_SAMPLES = 65_536  # samples per channel in the documented schema (the body limit binds first)
FLOAT32_MAX = 3.4e38
log = logging.getLogger("fusion.serving")


class MicroBatcher:
    """Gather the calls made in one event-loop turn into one call of `fn` on all their items, then hand each caller its
    own slice of the results. `fn` maps a list to a sequence of the same length, synchronously or as a coroutine:
    one model call for every request waiting (`Predictor.probabilities`), one Redis round trip for every lookup."""

    def __init__(self, fn: Callable[[list], Sequence | Awaitable[Sequence]],
                 on_batch: Callable[[int], None] | None = None):
        self.fn, self.on_batch = fn, on_batch
        self._pending: list[tuple[list, asyncio.Future]] = []

    async def __call__(self, items: list) -> Sequence:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._pending.append((items, future))
        if len(self._pending) == 1:
            loop.call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        pending, self._pending = self._pending, []
        items = [item for batch, _ in pending for item in batch]
        if self.on_batch is not None:
            self.on_batch(len(items))
        try:
            result = self.fn(items)
        except Exception as err:  # noqa: BLE001 - handed to every waiting caller, which re-raises it
            return self._settle(pending, error=err)
        if inspect.isawaitable(result):
            asyncio.ensure_future(result).add_done_callback(lambda task: self._settle_with(pending, task))
        else:
            self._settle(pending, result)

    @classmethod
    def _settle_with(cls, pending: list[tuple[list, asyncio.Future]], task: asyncio.Future) -> None:
        error = asyncio.CancelledError() if task.cancelled() else task.exception()
        cls._settle(pending, task.result() if error is None else (), error)

    @staticmethod
    def _settle(pending: list[tuple[list, asyncio.Future]], result: Sequence = (), error: BaseException | None = None):
        start = 0
        for batch, future in pending:
            if not future.done():
                if error is not None:
                    future.set_exception(error)
                else:
                    future.set_result(result[start:start + len(batch)])
            start += len(batch)


@dataclass
class Service:
    "Everything a request needs, built once per app."
    bundle: Bundle
    settings: Settings
    predictor: Predictor
    verifier: TokenVerifier
    cache: Cache | None
    batcher: MicroBatcher  # model calls
    lookups: MicroBatcher | None  # cache reads (None without a cache)
    ready: bool = False
    freeze_gc: bool = False  # gc.freeze() after warm-up: process-wide, so only a process that only serves asks for it
    background: set = field(default_factory=set)

    def cache_stats(self) -> dict[str, float]:
        if self.cache is None:
            return {"enabled": 0}
        s, breaker = self.cache.stats, getattr(self.cache, "breaker", None)
        return {"hits": s.hits, "misses": s.misses, "errors": s.errors, "enabled": 1,
                "breaker_open": float(breaker is not None and breaker.state != "closed")}


# --- schemas: documentation only; bodies are validated by the Predictor -------------------------------------------

class ModelRef(BaseModel):
    name: str
    version: str


class Prediction(BaseModel):
    series_id: str
    label: str
    probabilities: dict[str, float]
    cached: bool


class PredictResponse(BaseModel):
    predictions: list[Prediction]
    model: ModelRef
    trace_id: str


class ErrorResponse(BaseModel):
    detail: str


def request_schema(predictor: Predictor, max_instances: int) -> dict:
    "JSON schema of a `/v1/predict` body for this model: its channels, at least one window of finite numbers."
    samples = {"type": "array", "minItems": predictor.spec.window, "maxItems": MAX_SAMPLES,
               "items": {"type": "number", "minimum": -FLOAT32_MAX, "maximum": FLOAT32_MAX}}
    instance = {"type": "object", "required": ["series_id", "channels"], "additionalProperties": False,
                "properties": {
                    "series_id": {"type": "string", "minLength": 1, "maxLength": MAX_SERIES_ID},
                    "channels": {"type": "object", "required": list(predictor.channels), "additionalProperties": False,
                                 "properties": {c: samples for c in predictor.channels},
                                 "description": "equal-length sample lists, one per channel"}}}
    return {"title": "PredictRequest", "type": "object", "required": ["instances"], "additionalProperties": False,
            "properties": {"instances": {"type": "array", "minItems": 1, "maxItems": max_instances, "items": instance}},
            "example": {"instances": [predictor.example(series_id="s1")]}}


# --- request handling --------------------------------------------------------------------------------------------

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


async def predict_body(service: Service, body: bytes) -> list[dict]:
    "Predictions for a request body: cached ones from the cache, the rest from the micro-batcher."
    predictor, cache = service.predictor, service.cache
    series = predictor.validate_json(body)
    keys = [cache_key(service.bundle.digest, s.x) for s in series] if cache else []
    found = await service.lookups(keys) if cache else [None] * len(series)
    results: list[dict | None] = [None] * len(series)
    misses = []
    for i, (s, value) in enumerate(zip(series, found, strict=True)):
        if value is not None:
            results[i] = {"series_id": s.series_id, **orjson.loads(value), "cached": True}
        else:
            misses.append(i)
    if misses:
        probs = await service.batcher([series[i].x for i in misses])
        fresh = {}
        for i, p in zip(misses, probs, strict=True):
            entry = predictor.format(series[i].series_id, p)
            results[i] = {**entry, "cached": False}
            if cache:
                fresh[keys[i]] = orjson.dumps({"label": entry["label"], "probabilities": entry["probabilities"]})
        if fresh:  # written after the response, off the request's path
            task = asyncio.create_task(cache.set_many(fresh, service.settings.cache_ttl_s))
            service.background.add(task)
            task.add_done_callback(service.background.discard)
    return results


# --- the app -----------------------------------------------------------------------------------------------------

def _build_service(bundle_dir: str | Path, settings: Settings, compile: bool) -> Service:
    bundle = load_bundle(bundle_dir)
    predictor = bundle.predictor(max_instances=settings.max_instances, compile=compile)
    cache = RedisCache(settings.redis_url) if settings.redis_url else None
    return Service(bundle, settings, predictor, TokenVerifier.from_settings(settings), cache,
                   MicroBatcher(predictor.probabilities), MicroBatcher(cache.get_many) if cache else None)


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    service: Service = app.state.service
    calls = service.predictor.warmup()
    if service.freeze_gc:  # the bundle, torch and the compiled graphs live as long as the process: no GC pass for them
        gc.collect()
        gc.freeze()
    service.ready = True
    log.info("ready", extra={"model": service.bundle.name, "version": service.bundle.version, "warmup_calls": calls,
                             "cache": service.cache is not None})
    yield
    service.ready = False
    if service.background:  # let pending cache writes finish (each is bounded by the 50 ms timeouts)
        await asyncio.wait(service.background, timeout=1.0)
    if service.cache is not None:
        await service.cache.close()
    log.info("stopped")


def _error_response(request: Request, exc: Exception) -> JSONResponse:
    "The one mapping of domain errors to status codes."
    status = next((code for cls, code in STATUS_OF.items() if isinstance(exc, cls)), 500)
    if status >= 500:
        log.error("request failed", exc_info=exc, extra={"path": request.url.path})
        detail = f"internal error ({type(exc).__name__}); trace id {TRACE_ID.get()}"
    else:
        detail = str(exc)
    return JSONResponse({"detail": detail}, status_code=status)


class InferenceApp(FastAPI):
    """FastAPI with one shortcut: a route made hot by `hot()` is answered by its ASGI function straight from the
    observing middleware, past Starlette's error, exception and routing layers (together they cost more than a cache
    hit). Its errors get the same answers as anywhere else; its OpenAPI entry, and the way through the router, stay
    FastAPI's. `ObserveMiddleware` (traces, metrics, access log) wraps everything."""

    def __init__(self, *args, metrics: Metrics, **kwargs):
        super().__init__(*args, **kwargs)
        self.metrics = metrics
        self._hot: dict[tuple[str, str], Any] = {}  # (method, path) -> route

    def hot(self, method: str, path: str, asgi: Callable) -> None:
        "Answer the declared route `method path` with the ASGI function `asgi`, through the shortcut and the router."
        route = next(r for r in self.router.routes if getattr(r, "path", None) == path and method in r.methods)
        route.app = asgi
        self._hot[(method, path)] = route

    def build_middleware_stack(self) -> Callable:
        stack, hot = super().build_middleware_stack(), dict(self._hot)

        async def shortcut(scope, receive, send) -> None:
            route = hot.get((scope.get("method"), scope.get("path"))) if scope["type"] == "http" else None
            if route is None:
                return await stack(scope, receive, send)
            scope["route"], scope["app"] = route, self
            try:
                await route.app(scope, receive, send)
            except HTTPException as exc:
                await JSONResponse({"detail": exc.detail}, exc.status_code, exc.headers)(scope, receive, send)
            except Exception as exc:  # noqa: BLE001 - mapped like the app's own exception handlers do
                await _error_response(Request(scope), exc)(scope, receive, send)

        return ObserveMiddleware(shortcut, self.metrics)


def create_app(bundle_dir: str | Path, settings: Settings | None = None, compile: bool = False,
               freeze_gc: bool = False) -> FastAPI:
    """The inference app of the bundle at `bundle_dir`; raises `BundleIntegrityError` if it does not verify.

    `compile=True` compiles the feature path during warm-up (see `Predictor`), before the app reports ready;
    `freeze_gc=True` (`fusion serve`) then moves everything alive into `gc.freeze()`'s permanent generation.
    """
    settings = settings or Settings()
    service = _build_service(bundle_dir, settings, compile)
    service.freeze_gc = freeze_gc
    b = service.bundle
    model_ref = {"name": b.name, "version": b.version}
    metrics = Metrics({"name": b.name, "version": b.version, "bundle_digest": b.digest,
                       "feature_spec_digest": b.model.config.get("feature_spec_digest", "")}, service.cache_stats)
    app = InferenceApp(title=f"fusion inference: {b.name} {b.version}", version=b.version, lifespan=_lifespan,
                       metrics=metrics, description="Classify multichannel sensor series with the exported model. "
                                                    "`/v1/*` needs `Authorization: Bearer <JWT>`.")
    app.state.service = service
    app.state.metrics = metrics
    service.batcher.on_batch = metrics.batch_size.observe
    predicted_cached, predicted_fresh = metrics.predictions.labels("true"), metrics.predictions.labels("false")
    app.add_exception_handler(FusionError, _error_response)
    app.add_exception_handler(Exception, _error_response)
    errors = {401: {"model": ErrorResponse, "description": "missing or invalid bearer token"},
              422: {"model": ErrorResponse, "description": "invalid instances (the message names the problem)"}}
    body_schema = request_schema(service.predictor, settings.max_instances)

    async def predict(scope, receive, send) -> None:
        """POST /v1/predict as a bare ASGI function: the hot path skips FastAPI's per-request machinery (dependencies,
        Request and Response objects). Errors are raised as usual and get the app's usual answers (`InferenceApp`)."""
        headers = dict(scope["headers"])
        verify_authorization(service.verifier, headers.get(b"authorization", b"").decode("latin-1"))
        body = await read_body(receive, headers.get(b"content-length"), service.settings.max_body_bytes)
        predictions = await predict_body(service, body)
        cached = sum(p["cached"] for p in predictions)
        if cached:
            predicted_cached.inc(cached)
        if cached < len(predictions):
            predicted_fresh.inc(len(predictions) - cached)
        out = orjson.dumps({"predictions": predictions, "model": model_ref, "trace_id": TRACE_ID.get()})
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(out))]})
        await send({"type": "http.response.body", "body": out})

    @app.post("/v1/predict", response_model=PredictResponse, tags=["inference"],
              responses={**errors, 413: {"model": ErrorResponse, "description": "body over the size limit"}},
              openapi_extra={"security": BEARER_SECURITY,
                             "requestBody": {"required": True, "content": {"application/json": {"schema": body_schema}}}})
    async def predict_contract() -> PredictResponse:
        "Classify each instance: its label and the probability of every label. The traceparent header is continued."
        raise NotImplementedError  # never called: `app.hot` makes `predict` (above) the route's ASGI app

    app.hot("POST", "/v1/predict", predict)

    @app.get("/v1/model", tags=["inference"], responses={401: errors[401]})
    async def model(claims: ClaimsDep, predictor: PredictorDep, service: ServiceDep, settings: SettingsDep) -> dict:
        "The served model: name, version, labels, feature spec and the bundle's MANIFEST summary."
        return {"name": b.name, "version": b.version, "labels": predictor.labels,
                "feature_spec": predictor.spec.to_dict(), "feature_spec_digest": predictor.spec.digest(),
                "max_instances": predictor.max_instances, "max_body_bytes": settings.max_body_bytes,
                "manifest": service.bundle.summary()}

    @app.get("/healthz", tags=["operations"])
    async def healthz() -> dict:
        "Liveness: the process answers."
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"], responses={503: {"description": "warming up or shutting down"}})
    async def readyz(service: ServiceDep) -> Response:
        "Readiness: the bundle verified and the model warmed. Never depends on Redis."
        if not service.ready:
            return JSONResponse({"status": "not ready"}, status_code=503)
        return JSONResponse({"status": "ready", "model": b.name, "version": b.version})

    @app.get("/metrics", tags=["operations"], response_class=Response)
    async def prometheus() -> Response:
        "Prometheus metrics: requests by route and status, latency, cache hits/misses/errors, model info."
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app
