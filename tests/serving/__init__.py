"""Tests of the predictor and the inference service (fusion.inference.predictor, fusion.serving)."""
