"""The training loop's GPU fast paths, set by ``train.accel`` in the run config.

- **channels-last** (NHWC) weights and images: on CUDA, convolutions under bf16 autocast run on
  tensor cores without a layout transpose around every layer.
- **cuDNN autotuning** (``torch.backends.cudnn.benchmark``): cuDNN times its convolution algorithms
  for each new input shape and keeps the fastest. The training loader drops its last, smaller batch,
  so an epoch has one training shape and one or two evaluation shapes to tune for.
- **torch.compile**: the network's forward (and its backward, by AOTAutograd) as fused graphs,
  compiled at the first step of a run and again for evaluation, whose BatchNorm mode differs.

"auto" turns the first two on for CUDA and off elsewhere; compiling is off unless asked for. The
switches change how the network runs, never what it computes beyond floating-point rounding, nor
what a checkpoint holds: the loop saves the uncompiled module's state (no ``_orig_mod.`` prefix) as
contiguous tensors, so export and predict read checkpoints as before. ``bench/gpu.sh`` measures each
switch against the loop without it.
"""

from __future__ import annotations

import os
import shutil
import typing
from dataclasses import dataclass

import torch
from torch import nn

from ldlpose.config import AccelConfig
from ldlpose.errors import LdlposeError


@dataclass(frozen=True)
class Accel:
    """``train.accel`` resolved for one device."""

    channels_last: bool
    cudnn_benchmark: bool
    compile_mode: str | None  # torch.compile's mode; None: eager

    @property
    def names(self) -> str:
        """The switches that are on, for logs and benchmark tables ("none" when all are off)."""
        on = [n for n, v in (("channels_last", self.channels_last), ("cudnn_benchmark", self.cudnn_benchmark)) if v]
        if self.compile_mode is not None:
            on.append(f"compile:{self.compile_mode}")
        return "+".join(on) or "none"


def resolve(config: AccelConfig, device: torch.device) -> Accel:
    """The switches for ``device``: "auto" is on for CUDA, off elsewhere."""
    cuda = device.type == "cuda"

    def switch(value: str | bool) -> bool:
        return cuda if value == "auto" else bool(value)

    mode = None if config.compile is False else "default" if config.compile is True else str(config.compile)
    return Accel(switch(config.channels_last), switch(config.cudnn_benchmark), mode)


def set_backend(accel: Accel) -> None:
    """cuDNN autotuning is a process-wide flag: set either way, so that an earlier run in the same
    process (an in-process trial) leaves nothing behind."""
    torch.backends.cudnn.benchmark = accel.cudnn_benchmark


def to_memory_format(model: nn.Module, accel: Accel) -> nn.Module:
    """Channels-last weights, and a hook that hands the network channels-last images. Before the
    optimizer is built (its moments take the parameters' layout); loading a state dict later copies
    values into the parameters and keeps their layout."""
    if accel.channels_last:
        model.to(memory_format=torch.channels_last)  # 4-d weights only; the heads' matrices stay as they are
        model.register_forward_pre_hook(_channels_last_input)
    return model


def _channels_last_input(module: nn.Module, args: tuple) -> tuple:
    images, *rest = args
    return (images.contiguous(memory_format=torch.channels_last), *rest)


def compiled(model: nn.Module, accel: Accel, device: torch.device) -> nn.Module:
    """``torch.compile(model)`` when asked for: after DDP wrapping, so that Dynamo splits the graph
    at DDP's gradient buckets; ``loop.unwrap`` reaches the module whose state a checkpoint holds."""
    if accel.compile_mode is None:
        return model
    check_compiler(device)
    return typing.cast(nn.Module, torch.compile(model, mode=accel.compile_mode))  # an OptimizedModule


def check_compiler(device: torch.device) -> None:
    """Inductor builds C++ kernels for the CPU, and Triton a C launcher for CUDA: without a compiler
    the first training step would fail deep inside Inductor, so fail before training, saying so."""
    if device.type == "cpu":
        names, variable, kind = ("g++", "clang++", "c++"), "CXX", "C++"
    else:
        names, variable, kind = ("gcc", "clang", "cc"), "CC", "C"
    wanted = os.environ.get(variable)
    if not any(shutil.which(name) for name in ((wanted,) if wanted else names)):
        raise LdlposeError(f"train.accel.compile: torch.compile on {device.type} needs a {kind} compiler "
                           f"(${variable} or one of {', '.join(names)} on PATH), found none: install one "
                           "or set train.accel.compile: false")


def dense(state: dict) -> dict:
    """A state dict with every tensor in the default, contiguous layout: a channels-last run writes
    the same checkpoint as any other."""
    return {k: v.contiguous() if torch.is_tensor(v) else v for k, v in state.items()}
