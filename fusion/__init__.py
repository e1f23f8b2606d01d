"""Research platform for multichannel sensor time-series: notebooks are the source, production is an export.

Modules:

- `fusion.bundle.image`: The bundle's serving image, built and checked for real with Podman (or Docker): the logic behind `fusion image`.
- `fusion.commands.bus`: The event-bus commands of the `fusion` CLI: `relay`, `trigger`, `worker`, `lineage`.
- `fusion.commands.exits`: One table of exit codes that means the same thing in every `fusion` command, and `exit_on`, which ends a command with the code of the error it met.
- `fusion.commands.export`: `fusion export` and `fusion verify`: write a serving bundle from MLflow, and prove that it stands alone.
- `fusion.commands.image`: `fusion image base|build|verify`: the serving image of a bundle, with Podman (or Docker with --engine docker).
- `fusion.commands.serve`: `fusion serve`, `fusion token` and `fusion example-body`: serve a bundle with uvicorn, mint a development token, print a small request body to try it with.
- `fusion.errors`: One exception hierarchy for the whole of fusion, so callers catch what they mean and the HTTP layer maps each kind to one status code.
- `fusion.inference.pyfunc_model`: MLflow "models from code" entry file: MLflow copies and runs this file to build the fusion pyfunc (nothing is pickled).
- `fusion.serving.app`: The inference app of an export bundle: `create_app(bundle_dir, settings)` assembles the service, the FastAPI app (routes, exception handlers, lifespan) and the two pure-ASGI layers in front of it.
- `fusion.serving.deps`: FastAPI dependencies of the inference service, as `Annotated` aliases: route handlers declare what they need.
- `fusion.serving.fastpath`: The fast path: `POST /v1/predict` as a plain ASGI endpoint, reached through a small pure-ASGI dispatcher in front of the FastAPI app.
- `fusion.serving.observe`: Observability of the inference service: W3C trace context, JSON logs that carry the trace id, Prometheus metrics.
- `fusion.serving.responses`: The one mapping of errors to HTTP answers, used by the fast path and by FastAPI's exception handlers alike.
- `fusion.serving.routes`: The inference API's FastAPI routes, thin: declare what they need (`fusion.serving.deps`), ask the service, return.
- `fusion.serving.schemas`: The documented contract of the inference API: response models, the request schema built from the bundle's feature spec, and the OpenAPI entry of `POST /v1/predict`.
- `fusion.serving.service`: The inference service behind the HTTP layer: the verified bundle, its `Predictor`, the token verifier, the cache and the micro-batchers, built once per app; `Service.predict(body)` turns a request body into predictions.
- `fusion.settings`: Kedro project settings: the hooks that track runs in MLflow, write the serving bundle, record and relay events."""

__version__ = "0.1.0"
