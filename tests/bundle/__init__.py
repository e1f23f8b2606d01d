"""Tests of the export part: bundle, MANIFEST, golden cases, pyfunc, Dockerfile, manifests, fusion verify."""
