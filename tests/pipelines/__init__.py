"""Tests of the Kedro pipelines (fusion/pipelines/): each pipeline, the default run end to end, papermill, another dataset."""
