"""Research platform for multichannel sensor time-series: notebooks are the source, production is an export.

Modules:

- `fusion.bundle.image`: `fusion image base|build|verify`: the bundle's serving image, built and checked for real with Podman (or Docker).
- `fusion.commands.export`: `fusion export` and `fusion verify`: write a serving bundle from MLflow, and prove that it stands alone.
- `fusion.commands.serve`: `fusion serve` and `fusion token`: run the inference app of a bundle with uvicorn, mint a development token.
- `fusion.serving.app`: The FastAPI app of an export bundle: `create_app(bundle_dir, settings)`; routes, middleware, one error handler.
- `fusion.serving.deps`: FastAPI dependencies of the inference service, as `Annotated` aliases: route handlers declare what they need.
- `fusion.serving.observe`: Observability of the inference service: W3C trace context, JSON logs that carry the trace id, Prometheus metrics."""

__version__ = "0.1.0"
