"""Networks: backbones (:mod:`.backbones`, a registry whose names configs are checked against) and
a backbone's pooled feature followed by the method's head (:mod:`.network`).

Importing the package is free of torch: loading a run config reads the backbone names from here,
and the network itself (which needs torch) loads on first use of ``PoseNet`` or ``build_model``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ldlpose.models.backbones import available

if TYPE_CHECKING:
    from ldlpose.models.network import PoseNet, build_model

__all__ = ["PoseNet", "available", "build_model"]


def __getattr__(name: str) -> Any:
    if name in ("PoseNet", "build_model"):
        from ldlpose.models import network

        return getattr(network, name)
    raise AttributeError(f"module 'ldlpose.models' has no attribute {name!r}")
