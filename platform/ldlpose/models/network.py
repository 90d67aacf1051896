"""The network: a backbone's pooled feature followed by the method's head."""

from __future__ import annotations

from torch import nn

from ldlpose.models.backbones import build_backbone, feature_dim


class PoseNet(nn.Module):
    """Images (N, 3, H, W), normalised RGB, to the method's raw outputs (N, num_outputs)."""

    def __init__(self, backbone: nn.Module, head: nn.Module):
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward(self, images):
        return self.head(self.backbone(images))


def build_model(method, backbone: str, weights: str = "none") -> PoseNet:
    return PoseNet(build_backbone(backbone, weights), method.head(feature_dim(backbone)))
