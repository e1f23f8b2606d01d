"""Kedro project settings: the hooks that track runs in MLflow and record events.

Tracking and events live in hooks, never in nodes (see nbs/35_hooks.ipynb).
"""

from kedro.config import OmegaConfigLoader

CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {"base_env": "base", "default_run_env": "local"}
HOOKS = ()
