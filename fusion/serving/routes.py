"""The inference API's FastAPI routes, thin: declare what they need (`fusion.serving.deps`), ask the service, return.

`router` holds `GET /v1/model`, `/healthz`, `/readyz` and `/metrics`; `POST /v1/predict` is `predict_route`, a
`FastRoute` whose endpoint is the ASGI class `PredictEndpoint` (`fusion.serving.fastpath`).
Documented in nbs/53_serving_app.ipynb.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from fusion.serving.deps import ClaimsDep, MetricsDep, PredictorDep, ServiceDep, SettingsDep
from fusion.serving.fastpath import FastRoute, PredictEndpoint
from fusion.serving.observe import Metrics
from fusion.serving.schemas import ErrorResponse
from fusion.serving.service import Service

__all__ = ["PREDICT_PATH", "router", "predict_route"]

PREDICT_PATH = "/v1/predict"
router = APIRouter()


def predict_route(service: Service, metrics: Metrics) -> FastRoute:
    "`POST /v1/predict`, answered by `PredictEndpoint` (its OpenAPI entry: `fusion.serving.schemas.predict_operation`)."
    return FastRoute(PREDICT_PATH, PredictEndpoint(service, metrics), methods=["POST"], include_in_schema=False)


@router.get("/v1/model", tags=["inference"],
            responses={401: {"model": ErrorResponse, "description": "missing or invalid bearer token"}})
async def model(claims: ClaimsDep, predictor: PredictorDep, service: ServiceDep, settings: SettingsDep) -> dict:
    "The served model: name, version, labels, feature spec and the bundle's MANIFEST summary."
    return {"name": service.bundle.name, "version": service.bundle.version, "labels": predictor.labels,
            "feature_spec": predictor.spec.to_dict(), "feature_spec_digest": predictor.spec.digest(),
            "max_instances": predictor.max_instances, "max_body_bytes": settings.max_body_bytes,
            "manifest": service.bundle.summary()}


@router.get("/healthz", tags=["operations"])
async def healthz() -> dict:
    "Liveness: the process answers."
    return {"status": "ok"}


@router.get("/readyz", tags=["operations"], responses={503: {"description": "warming up or shutting down"}})
async def readyz(service: ServiceDep) -> Response:
    "Readiness: the bundle verified and the model warmed. Never depends on Redis."
    if not service.ready:
        return JSONResponse({"status": "not ready"}, status_code=503)
    return JSONResponse({"status": "ready", "model": service.bundle.name, "version": service.bundle.version})


@router.get("/metrics", tags=["operations"], response_class=Response)
async def prometheus(metrics: MetricsDep) -> Response:
    "Prometheus metrics: requests by route and status, latency, cache hits/misses/errors, model info."
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
