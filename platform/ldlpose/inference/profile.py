"""What a model costs to run: latency on a device, parameter count and multiply-accumulates.

These are the cost objectives of a multi-objective search (``search.metric`` as a list). They are
measured on the forward path that is exported and served, :class:`ldlpose.inference.predictor.PosePredictor`
(normalisation, backbone, head and the method's decoding), in float32 and evaluation mode, because
that is what a deployed model runs; training's bf16 autocast on GPUs is not part of it.

Latency is wall-clock time of one forward pass at batch 1 (what a camera loop sees) and at a
configurable batch, after a warm-up (allocator, cuDNN autotuning, CPU caches), as the median and
90th percentile of ``repeats`` timed passes; on CUDA the device is synchronised around each pass so
the time covers the kernels and not only their launch. MACs are counted with forward hooks on the
convolution and linear layers, which hold all but a negligible share of the arithmetic of these
networks (BatchNorm, activations, pooling and the decode are not counted).
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass

import torch
from torch import nn

# The keys profile_module reports, named in ldlpose.metrics, where a search space reads them without torch.
from ldlpose.metrics import COST_METRICS

__all__ = ["COST_METRICS", "ProfileSettings", "count_macs", "count_params_m", "device_name", "measure_latency",
           "profile_checkpoint", "profile_module"]


@dataclass(frozen=True)
class ProfileSettings:
    batch_size: int = 8  # the second batch size timed, besides 1
    warmup: int = 3
    repeats: int = 20


def count_params_m(module: nn.Module) -> float:
    """Parameters in millions (buffers such as BatchNorm statistics are not parameters)."""
    return sum(p.numel() for p in module.parameters()) / 1e6


def _conv_macs(layer: nn.modules.conv._ConvNd, output: torch.Tensor) -> int:
    # Every output element is a dot product over (in_channels / groups) x kernel elements.
    per_output = (layer.in_channels // layer.groups) * math.prod(layer.kernel_size)
    return output.numel() * per_output


def _linear_macs(layer: nn.Linear, output: torch.Tensor) -> int:
    return output.numel() * layer.in_features


def count_macs(module: nn.Module, example: torch.Tensor) -> int:
    """Multiply-accumulates of one forward pass of ``module`` on ``example``, divided by its batch size."""
    total = [0]

    def hook(layer, _inputs, output):
        count = _conv_macs if isinstance(layer, nn.modules.conv._ConvNd) else _linear_macs
        total[0] += count(layer, output)

    handles = [m.register_forward_hook(hook) for m in module.modules()
               if isinstance(m, (nn.modules.conv._ConvNd, nn.Linear))]
    try:
        with torch.inference_mode():
            module(example)
    finally:
        for handle in handles:
            handle.remove()
    return total[0] // example.shape[0]


def _synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure_latency(module: nn.Module, example: torch.Tensor, *, warmup: int, repeats: int) -> tuple[float, float]:
    """``(median, p90)`` milliseconds of ``module(example)`` on the device ``example`` is on."""
    device = example.device
    times = []
    with torch.inference_mode():
        for i in range(warmup + repeats):
            _synchronise(device)
            started = time.perf_counter()
            module(example)
            _synchronise(device)
            if i >= warmup:
                times.append((time.perf_counter() - started) * 1000.0)
    return statistics.median(times), _percentile(times, 90)


def _percentile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default), without numpy."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def device_name(device: torch.device) -> str:
    """What the device is, for comparing latencies: the GPU's or the CPU's model name."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return f"{line.split(':', 1)[1].strip()} ({torch.get_num_threads()} threads)"
    except OSError:
        pass
    import platform

    return f"{platform.processor() or platform.machine()} ({torch.get_num_threads()} threads)"


def profile_module(module: nn.Module, image_size: int, device: torch.device,
                   settings: ProfileSettings = ProfileSettings()) -> dict:
    """The cost metrics of an images -> angles module (every key of :data:`COST_METRICS`), plus
    ``latency_batch_size``, ``profile_device`` and ``profile_device_name``."""
    module = module.to(device).eval()
    generator = torch.Generator().manual_seed(0)
    single = torch.rand(1, 3, image_size, image_size, generator=generator).to(device)
    batch = torch.rand(settings.batch_size, 3, image_size, image_size, generator=generator).to(device)
    median_1, p90_1 = measure_latency(module, single, warmup=settings.warmup, repeats=settings.repeats)
    median_b, p90_b = measure_latency(module, batch, warmup=settings.warmup, repeats=settings.repeats)
    return {"latency_ms": median_1, "latency_p90_ms": p90_1, "latency_batch_ms": median_b,
            "latency_batch_p90_ms": p90_b, "latency_batch_size": settings.batch_size,
            "params_m": count_params_m(module), "macs_m": count_macs(module, single) / 1e6,
            "profile_device": str(device), "profile_device_name": device_name(device)}


def profile_checkpoint(checkpoint_dir, device: torch.device, settings: ProfileSettings = ProfileSettings()) -> dict:
    """:func:`profile_module` of a training checkpoint's predictor (the module that is exported)."""
    from ldlpose.inference.predictor import predictor_from_checkpoint

    predictor, info = predictor_from_checkpoint(checkpoint_dir)
    return profile_module(predictor, int(info["image_size"]), device, settings)
