"""The export pipeline: golden cases for the serving bundle (the bundle is written by fusion.tracking.export.ExportHooks)."""
