"""Load the docs build's scripts (docs/*.py, not a package) as modules, for their tests."""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

from fusion.config import find_project_root


def load_docs_script(name: str) -> ModuleType:
    "The module of docs/<name>.py, registered in `sys.modules` (dataclasses look their module up there)."
    spec = importlib.util.spec_from_file_location(f"fusion_docs_{name}", find_project_root() / "docs" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module
