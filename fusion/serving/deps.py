"""FastAPI dependencies of the inference service, as `Annotated` aliases: route handlers declare what they need.

`ServiceDep`, `SettingsDep`, `PredictorDep` and `MetricsDep` read what `create_app` put into the app's state (a test
can override `get_service` / `get_metrics` through `app.dependency_overrides`); `verify_authorization` is the one
place auth is checked: `ClaimsDep` calls it as a dependency, and the fast path (`fusion.serving.fastpath`) calls it
directly (FastAPI's dependency resolution costs more than the check). All are `async def` so they run on the event
loop, not in the thread pool. Documented in nbs/53_serving_app.ipynb.
"""

from __future__ import annotations

from typing import Annotated

import jwt
from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from fusion.config import Settings
from fusion.inference.predictor import Predictor
from fusion.serving.auth import TokenVerifier, bearer_token
from fusion.serving.observe import Metrics
from fusion.serving.service import Service

__all__ = ["get_service", "get_metrics", "ServiceDep", "SettingsDep", "PredictorDep", "MetricsDep", "ClaimsDep",
           "bearer_scheme", "verify_authorization", "BEARER_SECURITY"]

bearer_scheme = HTTPBearer(auto_error=False, bearerFormat="JWT",
                           description="A JWT with exp, aud and iss (HS256 or RS256); `fusion token` mints one.")
BEARER_SECURITY = [{bearer_scheme.scheme_name: []}]  # OpenAPI security of a route that checks the token itself


async def get_service(request: Request) -> Service:
    return request.app.state.service


async def get_metrics(request: Request) -> Metrics:
    return request.app.state.metrics


ServiceDep = Annotated[Service, Depends(get_service)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]


async def get_settings(service: ServiceDep) -> Settings:
    return service.settings


async def get_predictor(service: ServiceDep) -> Predictor:
    return service.predictor


SettingsDep = Annotated[Settings, Depends(get_settings)]
PredictorDep = Annotated[Predictor, Depends(get_predictor)]


def _unauthorized(reason: str) -> HTTPException:
    return HTTPException(401, detail=f"not authenticated: {reason}",
                         headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})


def verify_authorization(verifier: TokenVerifier, authorization: str | None) -> dict:
    "The claims of an `Authorization: Bearer <JWT>` header value; 401 with `WWW-Authenticate: Bearer` when invalid."
    token = bearer_token(authorization)
    if token is None:
        raise _unauthorized("an 'Authorization: Bearer <JWT>' header is required")
    try:
        return verifier.verify(token)
    except jwt.InvalidTokenError as err:
        raise _unauthorized(f"{type(err).__name__}: {err}") from None


async def require_claims(service: ServiceDep, request: Request,
                         credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)]) -> dict:
    "`verify_authorization` as a dependency; `bearer_scheme` puts the security scheme into the OpenAPI document."
    return verify_authorization(service.verifier, request.headers.get("authorization"))


ClaimsDep = Annotated[dict, Depends(require_claims)]
