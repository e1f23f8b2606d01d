"""Kedro project settings: the hooks that track runs in MLflow, write the serving bundle, record and relay events.

Tracking and events live in hooks, never in nodes (see nbs/34_tracking_run.ipynb and nbs/35_tracking_hooks.ipynb).
`project_hooks()` gives the four hooks one fresh shared `Runs`; each waits on what it needs from the others (the
registered model, the bundle, the recorded events), so the order Kedro calls them in does not matter.
"""

from kedro.config import OmegaConfigLoader

from fusion.tracking.hooks import project_hooks

CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {"base_env": "base", "default_run_env": "local"}

HOOKS = project_hooks()
DISABLE_HOOKS_FOR_PLUGINS = ("kedro-viz", "kedro-telemetry")
