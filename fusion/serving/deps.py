"""FastAPI dependencies of the inference service, as `Annotated` aliases: route handlers declare what they need.

`SettingsDep`, `CacheDep`, `PredictorDep`, `ServiceDep` read the `Service` built by `create_app` (tests can
override `get_service`); `verify_authorization` is the one place auth is checked: `ClaimsDep` calls it as a
dependency, and the hot `/v1/predict` calls it directly (FastAPI's dependency resolution costs more than the check).
All are `async def` so they run on the event loop, not in the thread pool.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import jwt
from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from fusion.config import Settings
from fusion.inference.predictor import Predictor
from fusion.serving.auth import TokenVerifier, bearer_token
from fusion.serving.cache import Cache

if TYPE_CHECKING:
    from fusion.serving.app import Service

__all__ = ["get_service", "ServiceDep", "SettingsDep", "CacheDep", "PredictorDep", "ClaimsDep", "bearer_scheme", "verify_authorization",
           "BEARER_SECURITY"]

BEARER_SECURITY = [{"HTTPBearer": []}]  # OpenAPI security of a route that checks the token itself
bearer_scheme = HTTPBearer(auto_error=False, bearerFormat="JWT",
                           description="A JWT with exp, aud and iss (HS256 or RS256); `fusion token` mints one.")


async def get_service(request: Request) -> Service:
    return request.app.state.service


ServiceDep = Annotated["Service", Depends(get_service)]


async def get_settings(service: ServiceDep) -> Settings:
    return service.settings


async def get_cache(service: ServiceDep) -> Cache | None:
    return service.cache


async def get_predictor(service: ServiceDep) -> Predictor:
    return service.predictor


SettingsDep = Annotated[Settings, Depends(get_settings)]
CacheDep = Annotated[Cache | None, Depends(get_cache)]
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


async def require_claims(request: Request,
                         credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)]) -> dict:
    "`verify_authorization` as a dependency; `bearer_scheme` puts the security scheme into the OpenAPI document."
    return verify_authorization(request.app.state.service.verifier, request.headers.get("authorization"))


ClaimsDep = Annotated[dict, Depends(require_claims)]
