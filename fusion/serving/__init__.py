"""The inference service of an export bundle: bundle integrity, the FastAPI app, its cache, auth and commands."""
