"""The documented contract of the inference API: response models, the request schema built from the bundle's feature
spec, and the OpenAPI entry of `POST /v1/predict`.

The models document; they validate nothing at run time (the `Predictor` validates bodies, the fast path writes the
answers). `POST /v1/predict` is answered outside FastAPI's own route handling (`fusion.serving.fastpath`), so its
OpenAPI operation is written here and added to the app's document with `add_operation`, FastAPI's documented way of
extending the schema (replace `app.openapi`). `/docs` and schemathesis read the complete contract. Documented in
nbs/53_serving_app.ipynb.
"""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import FastAPI
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from fusion.inference.predictor import MAX_SERIES_ID, Predictor
from fusion.serving.deps import BEARER_SECURITY, bearer_scheme

__all__ = ["MAX_SAMPLES", "ModelRef", "Prediction", "PredictResponse", "ErrorResponse", "request_schema",
           "predict_operation", "add_operation"]

MAX_SAMPLES = 65_536  # samples per channel in the documented schema (the body limit binds first)
FLOAT32_MAX = 3.4e38
REF = "#/components/schemas/{model}"


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


def _json(model: type[BaseModel], description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": REF.format(model=model.__name__)}}}}


def predict_operation(predictor: Predictor, max_instances: int) -> dict:
    "The OpenAPI operation of `POST /v1/predict` for this model."
    return {"tags": ["inference"], "summary": "Predict", "operationId": "predict_v1_predict_post",
            "description": "Classify each instance: its label and the probability of every label. "
                           "The traceparent header is continued.",
            "security": BEARER_SECURITY,
            "requestBody": {"required": True,
                            "content": {"application/json": {"schema": request_schema(predictor, max_instances)}}},
            "responses": {"200": _json(PredictResponse, "Successful Response"),
                          "401": _json(ErrorResponse, "missing or invalid bearer token"),
                          "413": _json(ErrorResponse, "body over the size limit"),
                          "422": _json(ErrorResponse, "invalid instances (the message names the problem)")}}


def add_operation(app: FastAPI, path: str, method: str, operation: dict, models: Sequence[type[BaseModel]]) -> None:
    """Add `operation` (answered outside FastAPI's route handlers) at `method path` of `app`'s OpenAPI document, with
    the component schemas of `models`, which its `$ref`s name."""
    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = FastAPI.openapi(app)  # FastAPI's own document of its routes, cached in app.openapi_schema
            components = schema.setdefault("components", {})
            components.setdefault("schemas", {}).update(
                models_json_schema([(m, "serialization") for m in models], ref_template=REF)[1]["$defs"])
            components.setdefault("securitySchemes", {})[bearer_scheme.scheme_name] = bearer_scheme.model.model_dump(
                mode="json", by_alias=True, exclude_none=True)
            schema["paths"].setdefault(path, {})[method.lower()] = operation
        return app.openapi_schema

    app.openapi = openapi
