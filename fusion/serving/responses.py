"""The one mapping of errors to HTTP answers, used by the fast path and by FastAPI's exception handlers alike.

A domain error (`fusion.errors`) gets the status of `STATUS_OF` (the first class it is an instance of) and its
message as `{"detail": ...}`; an `HTTPException` (401 from the token check, 413 from the body limit, 404/405 from
the router) keeps its status, detail and headers; anything else is a 500 whose detail names only the exception's type
and the trace id, while the traceback goes to the log. Documented in nbs/53_serving_app.ipynb.
"""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse

from fusion.errors import BundleIntegrityError, ConfigError, DataValidationError, FeatureSpecError, FusionError
from fusion.serving.observe import TRACE_ID

__all__ = ["STATUS_OF", "error_response", "handle_error"]

STATUS_OF: dict[type[FusionError], int] = {DataValidationError: 422, FeatureSpecError: 422, ConfigError: 500,
                                           BundleIntegrityError: 500}  # the rest of FusionError: 500
log = logging.getLogger("fusion.serving")


def error_response(exc: Exception, path: str) -> JSONResponse:
    "The answer to a request to `path` that raised `exc`: status, `{\"detail\": ...}` and headers (an ASGI app)."
    if isinstance(exc, HTTPException):
        return JSONResponse({"detail": exc.detail}, exc.status_code, exc.headers)
    status = next((code for cls, code in STATUS_OF.items() if isinstance(exc, cls)), 500)
    if status >= 500:
        log.error("request failed", exc_info=exc, extra={"path": path})
        return JSONResponse({"detail": f"internal error ({type(exc).__name__}); trace id {TRACE_ID.get()}"}, status)
    return JSONResponse({"detail": str(exc)}, status)


async def handle_error(request: Request, exc: Exception) -> JSONResponse:
    "`error_response` as a FastAPI exception handler (registered for `HTTPException`, `FusionError` and `Exception`)."
    return error_response(exc, request.scope["path"])
