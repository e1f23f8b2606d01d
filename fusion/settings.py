"""Kedro project settings: the hooks that track runs in MLflow and record events.

Tracking and events live in hooks, never in nodes (see nbs/35_hooks.ipynb). The hooks share one RunContext; ExportHooks writes the serving bundle once tracking has registered the model.
"""

from kedro.config import OmegaConfigLoader

from fusion.export_hooks import ExportHooks
from fusion.hooks import EventHooks, RunContext, TrackingHooks

CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {"base_env": "base", "default_run_env": "local"}

_RUN = RunContext()
HOOKS = (TrackingHooks(_RUN), ExportHooks(_RUN), EventHooks(_RUN))  # export runs after tracking, before ModelTrained
DISABLE_HOOKS_FOR_PLUGINS = ("kedro-viz", "kedro-telemetry")
