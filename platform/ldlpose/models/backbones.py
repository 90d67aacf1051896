"""Backbones: torchvision classifiers cut at their pooled feature.

Each entry builds a module mapping images (N, 3, H, W) to pooled features (N, D). Weights are
``"none"`` (random init, what tests and the CPU quickstart use), ``"imagenet"`` (torchvision's
default weight enum, downloaded into torchvision's cache) or a path to a state dict of the full
torchvision model (classifier keys are ignored).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ldlpose.errors import ConfigError, LdlposeError
from ldlpose.infra.registry import Registry

if TYPE_CHECKING:  # torch loads when a backbone is built: the run config checks names against this registry
    import torch
    from torch import nn

__all__ = ["Backbone", "available", "build_backbone", "feature_dim"]


@dataclass(frozen=True)
class Backbone:
    name: str
    feature_dim: int
    strip: Callable[[nn.Module], nn.Module]  # removes the classifier, keeps global pooling


_REGISTRY: Registry[Backbone] = Registry("backbone", error=ValueError,
                                         twice=lambda name, registered, new: f"backbone {name!r} registered twice")


def _register(name: str, feature_dim: int, strip: Callable[[nn.Module], nn.Module]) -> None:
    _REGISTRY.add(name, Backbone(name, feature_dim, strip))


def _strip_fc(model: nn.Module) -> nn.Module:
    from torch import nn

    model.fc = nn.Identity()
    return model


def _strip_classifier(model: nn.Module) -> nn.Module:
    from torch import nn

    model.classifier = nn.Identity()
    return model


for _name, _dim in [("resnet18", 512), ("resnet34", 512), ("resnet50", 2048), ("resnet101", 2048),
                    ("resnet152", 2048)]:
    _register(_name, _dim, _strip_fc)
# ShuffleNetV2 (channel split and shuffle, few depthwise layers) pools its 1024-channel conv5 before
# ``fc``. On a CPU it is the fastest to train of these: at 64 px, batch 64, one core, x0.5 steps
# 2.1-2.9x as many images per second as MobileNetV3-small, whose 5x5 depthwise layers on 4x4 and 2x2 maps
# spend most of the backward pass in their weight gradient (bench/RESULTS.md, "Quickstart").
for _name in ("shufflenet_v2_x0_5", "shufflenet_v2_x1_0"):
    _register(_name, 1024, _strip_fc)
for _name, _dim in [("mobilenet_v2", 1280), ("mobilenet_v3_small", 576), ("mobilenet_v3_large", 960),
                    ("efficientnet_b0", 1280)]:
    # MobileNetV3's classifier starts with a Linear(576/960 -> 1024/1280); the pooled feature is
    # what precedes it, so the whole classifier goes.
    _register(_name, _dim, _strip_classifier)


def available() -> list[str]:
    return _REGISTRY.names()


def feature_dim(name: str) -> int:
    return _get(name).feature_dim


def _get(name: str) -> Backbone:
    return _REGISTRY.get(name)


def _imagenet_state_dict(name: str) -> dict[str, torch.Tensor]:
    import torch
    import torchvision

    weights = torchvision.models.get_model_weights(name).DEFAULT
    checkpoints = Path(torch.hub.get_dir()) / "checkpoints"
    file = checkpoints / os.path.basename(weights.url)
    try:
        return weights.get_state_dict(progress=False)
    except Exception as err:  # offline: urllib raises URLError/OSError, sometimes wrapped
        raise LdlposeError(
            f"could not load ImageNet weights for {name} ({type(err).__name__}: {err}). "
            f"Without network access, download {weights.url} elsewhere and place it at {file}, "
            "or use weights: none or weights: <path to a state dict>"
        ) from err


def _file_state_dict(path: str) -> dict[str, torch.Tensor]:
    import torch

    file = Path(path).expanduser()
    if not file.is_file():
        raise ConfigError(f"backbone weights file {file} does not exist (weights: none | imagenet | <path>)")
    state = torch.load(file, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]
    return state


# PyTorch's default. torchvision builds MobileNetV2/V3 and EfficientNet with a BatchNorm momentum of
# 0.01, ImageNet's recipe for long schedules; trained from scratch for a few hundred steps, their
# running statistics then lag so far behind the weights that evaluation-mode outputs barely depend
# on the image (measured: MobileNetV3-small on synthhead, validation MAE flat at 20.4 degrees over 4
# epochs while its training loss halved). Pretrained weights keep the recipe they were trained with.
SCRATCH_BN_MOMENTUM = 0.1


def _short_schedule_batchnorm(model: nn.Module) -> None:
    from torch import nn

    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.momentum = SCRATCH_BN_MOMENTUM


def build_backbone(name: str, weights: str = "none") -> nn.Module:
    """The backbone ``name`` without its classifier, as a module returning (N, feature_dim)."""
    import torchvision

    spec = _get(name)
    model = torchvision.models.get_model(name, weights=None)
    if weights == "none":
        _short_schedule_batchnorm(model)
    if weights == "imagenet":
        model.load_state_dict(_imagenet_state_dict(name))
    elif weights != "none":
        state = _file_state_dict(weights)
        own = {k for k in model.state_dict() if not k.startswith(("fc.", "classifier."))}
        missing = own - set(state)
        if missing:
            raise ConfigError(
                f"weights file {weights} does not fit {name}: {len(missing)} keys missing, "
                f"e.g. {sorted(missing)[:3]}"
            )
        model.load_state_dict(state, strict=False)
    return spec.strip(model)
