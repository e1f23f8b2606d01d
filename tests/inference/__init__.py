"""Tests of fusion.inference: the MLflow pyfunc as MLflow's own tools run it."""
