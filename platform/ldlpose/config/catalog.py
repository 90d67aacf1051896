"""The names a config is checked against, read from the registries and modules that own them (no
copies): loading a config stays free of torch because those modules import it only to build or
compute (:mod:`ldlpose.models.backbones`, :mod:`ldlpose.metrics`).
"""

from __future__ import annotations

from ldlpose.metrics import COST_METRICS, METRIC_NAMES
from ldlpose.models.backbones import available as _backbones

__all__ = ["BACKBONES", "COST_METRICS", "METRIC_NAMES"]

BACKBONES = tuple(_backbones())
"""The backbone registry's names, sorted (filled when :mod:`ldlpose.models.backbones` is imported)."""
# METRIC_NAMES: the error metrics every evaluation reports; COST_METRICS: what a multi-objective
# search may minimise besides the error (ldlpose.inference.profile measures them).
