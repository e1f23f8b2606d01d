"""Every Kedro hook of a run: MLflow tracking, events, the export bundle, the relay."""
