"""Tests of the predictor and the inference service (fusion.predictor, fusion.serving)."""
