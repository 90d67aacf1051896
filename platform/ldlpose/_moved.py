"""Old module paths of modules that moved into layer packages, kept importable for saved state.

A search's Tune state is pickled, and a pickle names each class by its module path: a search
started before the package was split by layer (``ldlpose.hparams.GldlHparams``, ...) must resume
after it. The finder below answers an old path with the module that now lives at the new one
(the same module object, so classes compare equal) and warns, so that code still using an old
path is found and fixed. Remove an entry once no supported search state can name it.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import warnings

MOVED = {
    "ldlpose.catalog": "ldlpose.config.catalog",
    "ldlpose.cluster": "ldlpose.infra.ray_cluster",
    "ldlpose.detect": "ldlpose.deploy.detect",
    "ldlpose.export": "ldlpose.inference.predictor",
    "ldlpose.files": "ldlpose.infra.files",
    "ldlpose.hparams": "ldlpose.config.hparams",
    "ldlpose.jobs": "ldlpose.search.submit",
    "ldlpose.locations": "ldlpose.infra.locations",
    "ldlpose.models.profile": "ldlpose.inference.profile",
    "ldlpose.onnx_export": "ldlpose.inference.onnx",
    "ldlpose.photos": "ldlpose.deploy.photos",
    "ldlpose.plots": "ldlpose.report.figures",
    "ldlpose.schema": "ldlpose.config.schema",
    "ldlpose.storage": "ldlpose.infra.storage",
    "ldlpose.trace": "ldlpose.infra.trace",
    "ldlpose.tracking.champion_rule": "ldlpose.selection.rules",
    "ldlpose.train.record": "ldlpose.tracking.training",
    "ldlpose.viz": "ldlpose.report.drawing",
}
"""Old module path -> where it lives now. Old modules that are packages of the same name now are not
here: ``ldlpose.config`` re-exports the run config's names; ``ldlpose.report``, ``ldlpose.deploy`` and
``ldlpose.evaluation`` held functions only, which no saved state names."""


class _Alias(importlib.abc.Loader):
    def __init__(self, target: str):
        self.target = target

    def create_module(self, spec):
        module = importlib.import_module(self.target)
        self._spec = module.__spec__  # the import system sets the alias's spec on it next
        return module

    def exec_module(self, module) -> None:
        module.__spec__ = self._spec  # the target ran when it was imported; it keeps its own spec


class MovedModuleFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        new = MOVED.get(fullname)
        if new is None:
            return None
        warnings.warn(f"{fullname} moved to {new}; import it from there", DeprecationWarning, stacklevel=2)
        return importlib.machinery.ModuleSpec(fullname, _Alias(new))


def install() -> None:
    if not any(isinstance(f, MovedModuleFinder) for f in sys.meta_path):
        sys.meta_path.append(MovedModuleFinder())
