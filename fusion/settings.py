"""Kedro project settings: the hooks that track runs in MLflow and record events.

Tracking and events live in hooks, never in nodes (see nbs/35_hooks.ipynb). The hooks share one RunContext; ExportHooks writes the serving bundle once tracking has registered the model.
"""

from kedro.config import OmegaConfigLoader

from fusion.events.relay import RelayHooks
from fusion.tracking.export import ExportHooks
from fusion.tracking.hooks import EventHooks, RunContext, TrackingHooks

CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {"base_env": "base", "default_run_env": "local"}

_RUN = RunContext()
# Order matters: Kedro calls the last registered first. Tracking registers the model (tryfirst), export writes the bundle,
# EventHooks records ModelTrained (trylast, registered after RelayHooks so it runs before it), then RelayHooks drains the
# outbox to Kafka when a broker is configured.
HOOKS = (TrackingHooks(_RUN), ExportHooks(_RUN), RelayHooks(), EventHooks(_RUN))
DISABLE_HOOKS_FOR_PLUGINS = ("kedro-viz", "kedro-telemetry")
