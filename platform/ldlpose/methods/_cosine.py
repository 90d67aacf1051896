"""RankPose's cosine head, apart from :mod:`ldlpose.methods.rankpose` because defining an ``nn.Module``
imports torch, and the method modules are imported when a config is loaded."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class CosineHead(nn.Module):
    """y_k = scale * cos(f, w_k), bounded to [-scale, scale] degrees (RankPose's ``use_norm`` head)."""

    def __init__(self, in_features: int, out_features: int = 3, scale: float = 180.0) -> None:
        super().__init__()
        self.scale = scale
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.scale * F.linear(F.normalize(features, dim=-1), F.normalize(self.weight, dim=-1))
