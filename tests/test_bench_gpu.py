"""bench/gpu_check.py's table of the loop's fast paths (train.accel), at its dry-run sizes on the CPU:
the same batches through ldlpose's loop with each switch, the ratio to the loop without any. The
compiled variants are left out here (tests/train/test_accel.py holds the suite's one compile);
``bench/gpu.sh --dry-run --compile`` runs them too."""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import sys
from pathlib import Path

import torch

BENCH = Path(__file__).resolve().parent.parent / "bench"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_gpu_check_measures_the_loop_with_each_fast_path_on_the_same_batches():
    gpu = _load("gpu_check")
    cpu = torch.device("cpu")
    names = [n for n in gpu.SWITCHES if "compile" not in n]
    flag = torch.backends.cudnn.benchmark
    # Smaller still than the dry run's (ResNet-18): the suite checks the bookkeeping, not a speed.
    sizes = dataclasses.replace(gpu.DRY, backbone="shufflenet_v2_x0_5", steps=2)
    table = gpu.switch_rates(cpu, sizes, gpu.synthetic_batches(cpu, sizes), names)
    assert list(table) == ["none", "channels_last", "cudnn_benchmark", "auto"]
    assert all(row["images_per_s"] > 0 and math.isfinite(row["images_per_s"]) for row in table.values())
    assert all(row["warmup_epoch_s"] > 0 for row in table.values())
    for row in table.values():
        assert math.isclose(row["over_none"], row["images_per_s"] / table["none"]["images_per_s"])
    assert table["none"]["over_none"] == 1.0
    assert torch.backends.cudnn.benchmark == flag  # the cudnn_benchmark variant leaves the process as it was
    # Each variant is one switch against "none": a table row that turned on more would compare nothing.
    assert gpu.SWITCHES["compile"] == {"channels_last": False, "cudnn_benchmark": False, "compile": True}
    assert gpu.SWITCHES["channels_last"] == {"channels_last": True, "cudnn_benchmark": False}
