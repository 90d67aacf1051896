"""A module that loads on its first attribute access, so that importing a module which computes with
torch does not import torch: the run config validates every method's hyperparameter model, which
lives in the method's own module, and loading a config must stay cheap (``ldlpose --help`` too)."""

from __future__ import annotations

import importlib
from typing import Any


class LazyModule:
    """Stands for the module ``name`` until an attribute is read, then for the module itself."""

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attribute: str) -> Any:
        return getattr(importlib.import_module(self._name), attribute)

    def __repr__(self) -> str:
        return f"<lazy module {self._name!r}>"
