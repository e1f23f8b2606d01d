"""The FastAPI app of an export bundle: `create_app(bundle_dir, settings)`; routes, middleware, one error handler.

`POST /v1/predict` reads the body itself (size-limited), parses it with orjson and validates it with the
`Predictor` (bulk numpy conversion, no per-float pydantic), answers cached instances from Redis and predicts the rest
in one micro-batch per event-loop turn. The OpenAPI schema of the request is built from the bundle's feature spec
(its channels and window), so `/docs` and schemathesis see the real contract. Documented in nbs/53_serving_app.ipynb.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import orjson
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from fusion.config import Settings
from fusion.errors import BundleIntegrityError, ConfigError, DataValidationError, FeatureSpecError, FusionError
from fusion.predictor import MAX_SERIES_ID, Predictor
from fusion.serving.auth import TokenVerifier
from fusion.serving.bundle import Bundle, load_bundle
from fusion.serving.cache import Cache, RedisCache, cache_key
from fusion.serving.deps import ClaimsDep, PredictorDep, ServiceDep, SettingsDep
from fusion.serving.observe import TRACE_ID, Metrics, ObserveMiddleware

__all__ = ["STATUS_OF", "MAX_SAMPLES", "Service", "MicroBatcher", "create_app", "request_schema"]

STATUS_OF: dict[type[FusionError], int] = {DataValidationError: 422, FeatureSpecError: 422, ConfigError: 500,
                                           BundleIntegrityError: 500}  # the rest of FusionError: 500
MAX_SAMPLES = 65_536  # samples per channel in the documented schema (the body limit binds first)
FLOAT32_MAX = 3.4e38
log = logging.getLogger("fusion.serving")


class MicroBatcher:
    "Predict, in one `Predictor.probabilities` call, every request that is waiting in the same event-loop turn."

    def __init__(self, predictor: Predictor, on_batch: Callable[[int], None] | None = None):
        self.predictor, self.on_batch = predictor, on_batch
        self._pending: list[tuple[list[np.ndarray], asyncio.Future]] = []

    async def probabilities(self, xs: list[np.ndarray]) -> np.ndarray:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._pending.append((xs, future))
        if len(self._pending) == 1:
            loop.call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        pending, self._pending = self._pending, []
        xs = [x for xs, _ in pending for x in xs]
        if self.on_batch is not None:
            self.on_batch(len(xs))
        try:
            probs = self.predictor.probabilities(xs)
        except Exception as err:  # noqa: BLE001 - handed to every waiting request, which re-raises it
            for _, future in pending:
                if not future.done():
                    future.set_exception(err)
            return
        start = 0
        for xs, future in pending:
            if not future.done():
                future.set_result(probs[start:start + len(xs)])
            start += len(xs)


@dataclass
class Service:
    "Everything a request needs, built once per app."
    bundle: Bundle
    settings: Settings
    predictor: Predictor
    verifier: TokenVerifier
    cache: Cache | None
    batcher: MicroBatcher
    ready: bool = False
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

async def read_body(request: Request, limit: int) -> bytes:
    "The request body, or 413 as soon as it exceeds `limit` bytes (before reading it when Content-Length says so)."
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, detail=f"request body of {declared} bytes exceeds the limit of {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise HTTPException(413, detail=f"request body exceeds the limit of {limit} bytes")
    return bytes(body)


def parse_instances(body: bytes) -> list:
    "The `instances` of a JSON body; `DataValidationError` for malformed JSON or a wrong top-level shape."
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as err:
        raise DataValidationError(f"request body is not valid JSON: {err}") from None
    if not isinstance(payload, dict) or set(payload) != {"instances"}:
        got = sorted(payload) if isinstance(payload, dict) else type(payload).__name__
        raise DataValidationError(f"request body must be an object with exactly the key 'instances', got {got}")
    return payload["instances"]


async def predict_body(service: Service, body: bytes) -> list[dict]:
    "Predictions for a request body: cached ones from the cache, the rest from the micro-batcher."
    predictor, cache = service.predictor, service.cache
    series = predictor.validate(parse_instances(body))
    keys = [cache_key(service.bundle.digest, s.x) for s in series] if cache else []
    found = await cache.get_many(keys) if cache else [None] * len(series)
    results: list[dict | None] = [None] * len(series)
    misses = []
    for i, (s, value) in enumerate(zip(series, found, strict=True)):
        if value is not None:
            results[i] = {"series_id": s.series_id, **orjson.loads(value), "cached": True}
        else:
            misses.append(i)
    if misses:
        probs = await service.batcher.probabilities([series[i].x for i in misses])
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
    return Service(bundle, settings, predictor, TokenVerifier.from_settings(settings), cache, MicroBatcher(predictor))


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    service: Service = app.state.service
    calls = service.predictor.warmup()
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


def create_app(bundle_dir: str | Path, settings: Settings | None = None, compile: bool = False) -> FastAPI:
    """The inference app of the bundle at `bundle_dir`; raises `BundleIntegrityError` if it does not verify.

    `compile=True` compiles the feature path during warm-up (see `Predictor`), before the app reports ready.
    """
    settings = settings or Settings()
    service = _build_service(bundle_dir, settings, compile)
    b = service.bundle
    app = FastAPI(title=f"fusion inference: {b.name} {b.version}", version=b.version, lifespan=_lifespan,
                  description="Classify multichannel sensor series with the exported model. "
                              "`/v1/*` needs `Authorization: Bearer <JWT>`.")
    app.state.service = service
    metrics = Metrics({"name": b.name, "version": b.version, "bundle_digest": b.digest,
                       "feature_spec_digest": b.model.config.get("feature_spec_digest", "")}, service.cache_stats)
    app.state.metrics = metrics
    service.batcher.on_batch = metrics.batch_size.observe
    app.add_middleware(ObserveMiddleware, metrics=metrics)
    app.add_exception_handler(FusionError, _error_response)
    app.add_exception_handler(Exception, _error_response)
    errors = {401: {"model": ErrorResponse, "description": "missing or invalid bearer token"},
              422: {"model": ErrorResponse, "description": "invalid instances (the message names the problem)"}}
    body_schema = request_schema(service.predictor, settings.max_instances)

    @app.post("/v1/predict", response_model=PredictResponse, tags=["inference"],
              responses={**errors, 413: {"model": ErrorResponse, "description": "body over the size limit"}},
              openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": body_schema}}}})
    async def predict(request: Request, claims: ClaimsDep) -> Response:
        "Classify each instance: its label and the probability of every label. The traceparent header is continued."
        # the hot path takes the service from the closure rather than through more dependencies
        body = await read_body(request, service.settings.max_body_bytes)
        predictions = await predict_body(service, body)
        for p in predictions:
            metrics.predictions.labels("true" if p["cached"] else "false").inc()
        out = {"predictions": predictions, "model": {"name": b.name, "version": b.version}, "trace_id": TRACE_ID.get()}
        return Response(orjson.dumps(out), media_type="application/json")

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
