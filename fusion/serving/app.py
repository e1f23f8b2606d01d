"""The inference app of an export bundle: `create_app(bundle_dir, settings)` assembles the service, the FastAPI app
(routes, exception handlers, lifespan) and the two pure-ASGI layers in front of it.

    ObserveMiddleware  trace context, metrics, one JSON access-log line: every request, every route
      FastPath         POST /v1/predict -> PredictEndpoint directly; everything else ->
        FastAPI        /v1/model, /healthz, /readyz, /metrics, /docs, /openapi.json, 404/405; the lifespan

`POST /v1/predict` reads the body itself (size-limited), has the `Predictor` decode and validate it (msgspec types the
numbers while it parses, then one numpy conversion), answers cached instances from Redis and predicts the rest in one
micro-batch per event-loop turn (cache reads too: one Redis round trip per turn). Its OpenAPI entry is built from the
bundle's feature spec, so `/docs` and schemathesis see the real contract. Documented in nbs/53_serving_app.ipynb.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import FastAPI
from starlette.exceptions import HTTPException
from starlette.routing import Route
from starlette.types import ASGIApp

from fusion.bundle.verify import Bundle
from fusion.config import Settings
from fusion.errors import FusionError
from fusion.serving.fastpath import FastPath
from fusion.serving.observe import Metrics, ObserveMiddleware
from fusion.serving.responses import handle_error
from fusion.serving.routes import predict_route, router
from fusion.serving.schemas import ErrorResponse, PredictResponse, add_operation, predict_operation
from fusion.serving.service import Service

__all__ = ["create_app", "create_api"]


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    service: Service = app.state.service
    service.start()
    yield
    await service.stop()


def create_api(service: Service, metrics: Metrics, predict: Route) -> FastAPI:
    "The FastAPI app of `service`: its routes and `predict` (documented), the one error mapping, the lifespan."
    b = service.bundle
    api = FastAPI(title=f"fusion inference: {b.name} {b.version}", version=b.version, lifespan=_lifespan,
                  routes=[predict], description="Classify multichannel sensor series with the exported model. "
                                                "`/v1/*` needs `Authorization: Bearer <JWT>`.")
    api.state.service, api.state.metrics = service, metrics
    for error in (HTTPException, FusionError, Exception):
        api.add_exception_handler(error, handle_error)
    api.include_router(router)
    add_operation(api, predict.path, "POST", predict_operation(service.predictor, service.settings.max_instances),
                  models=(PredictResponse, ErrorResponse))
    return api


def create_app(bundle_dir: str | Path | Bundle, settings: Settings | None = None, compile: bool = False,
               freeze_gc: bool = False) -> ASGIApp:
    """The inference app of the bundle at `bundle_dir` (or of a `Bundle` verified already); raises
    `BundleIntegrityError` if it does not verify.

    `compile=True` compiles the feature path during warm-up (see `Predictor`), before the app reports ready;
    `freeze_gc=True` (`fusion serve`) then moves everything alive into `gc.freeze()`'s permanent generation.
    """
    service = Service.from_bundle(bundle_dir, settings or Settings(), compile=compile, freeze_gc=freeze_gc)
    b = service.bundle
    metrics = Metrics({"name": b.name, "version": b.version, "bundle_digest": b.digest,
                       "feature_spec_digest": b.model.config.get("feature_spec_digest", "")}, service.cache_stats)
    service.batcher.on_batch = metrics.batch_size.observe
    predict = predict_route(service, metrics)
    return ObserveMiddleware(FastPath(create_api(service, metrics, predict), [predict]), metrics)
