"""Inference on a trained model: the Predictor, request decoding and validation, the MLflow pyfunc."""
