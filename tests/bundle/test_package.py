"""The serving runtime's lock: lean (no platform), CPU torch, everything serving imports."""

from __future__ import annotations

import pytest

from fusion.bundle.package import SERVING_REQUIREMENTS, installed_distributions, lock_closure


@pytest.mark.slow
def test_the_lock_pins_a_lean_cpu_runtime(exported_run):
    lines = (exported_run.bundle / "requirements.lock").read_text().splitlines()
    pins = dict(line.split("==") for line in lines if line and not line.startswith("#"))
    assert pins["torch"] == "2.13.0+cpu" and not any(n.startswith("nvidia") for n in pins)
    for needed in ("fastapi", "uvicorn", "numpy", "safetensors", "PyJWT", "redis", "prometheus_client", "orjson"):
        assert needed in pins, needed
    for heavy in ("mlflow", "mlflow-skinny", "jax", "triton", "jupyterlab", "papermill", "nbdev", "matplotlib"):
        assert heavy not in pins, heavy


def test_the_lock_closure_follows_extras_and_markers_of_this_environment():
    pins = lock_closure(SERVING_REQUIREMENTS, installed_distributions())
    assert {"uvicorn", "httptools", "cryptography", "PyJWT"} <= set(pins)  # uvicorn[standard], PyJWT[crypto]
    assert "kedro" not in pins and "mlflow" not in pins
