"""Optimizer and learning-rate schedule from the run config (stepped once per epoch)."""

from __future__ import annotations

import math

import torch
from torch import nn

from ldlpose.config import OptimizerConfig, ScheduleConfig


def _param_groups(model: nn.Module, config: OptimizerConfig) -> list[dict]:
    """Backbone at ``lr``, the method's head at ``lr * head_lr_mult`` (HopeNet uses 5x)."""
    net = model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model
    head = list(net.get_submodule("head").parameters())
    head_ids = {id(p) for p in head}
    body = [p for p in net.parameters() if id(p) not in head_ids]
    return [
        {"params": body, "lr": config.lr},
        {"params": head, "lr": config.lr * config.head_lr_mult},
    ]


def make_optimizer(model: nn.Module, config: OptimizerConfig) -> torch.optim.Optimizer:
    groups = _param_groups(model, config)
    if config.name == "adam":
        return torch.optim.Adam(groups, weight_decay=config.weight_decay)
    if config.name == "adamw":
        return torch.optim.AdamW(groups, weight_decay=config.weight_decay)
    return torch.optim.SGD(groups, momentum=config.momentum, weight_decay=config.weight_decay)


def make_scheduler(optimizer: torch.optim.Optimizer, config: ScheduleConfig, epochs: int):
    """A LambdaLR over epochs: linear warm-up, then cosine, step or exponential decay."""
    warmup = config.warmup_epochs

    def factor(epoch: int) -> float:
        if epoch < warmup:
            return (epoch + 1) / (warmup + 1)
        t = epoch - warmup
        if config.name == "cosine":
            span = max(epochs - warmup, 1)
            return 0.5 * (1 + math.cos(math.pi * min(t, span) / span))
        if config.name == "step":
            return config.gamma ** (t // config.step_size)
        if config.name == "exponential":
            return config.gamma ** t
        return 1.0

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
