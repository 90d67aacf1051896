"""Shared fixtures: a tiny prepared synthhead and one local Ray instance for the slow tests."""

from __future__ import annotations

import os

import pytest

# Every Ray started by the tests runs with token authentication explicitly off (platform spec 3.2).
os.environ["RAY_AUTH_MODE"] = "disabled"
os.environ.setdefault("RAY_DEDUP_LOGS", "0")


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory):
    """A data root holding ``synthhead/{train,val,test}``: 96 / 32 / 32 images at 64 px."""
    from ldlpose.cli import main

    root = tmp_path_factory.mktemp("data")
    assert main(["prepare", "synthhead", "--out", str(root / "synthhead"), "--train", "96", "--val", "32",
                 "--test", "32", "--size", "64", "--workers", "1"]) == 0
    return root


@pytest.fixture(scope="session")
def ray_local():
    """One local Ray (2 CPUs) shared by the tests that train, torn down at the end."""
    import ray

    if ray.is_initialized():
        ray.shutdown()
    ray.init(num_cpus=2, include_dashboard=True, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()


def tiny_run(synth_root, **changes):
    """A valid run config on the tiny synthhead, resnet18 at 64 px from random init, 1 worker."""
    from ldlpose.config import run_config_from_dict

    data = {
        "name": "tiny",
        "method": {"name": "gldl"},
        "model": {"backbone": "resnet18", "weights": "none"},
        "data": {"root": str(synth_root), "train": "synthhead/train", "val": "synthhead/val",
                 "benchmarks": ["synth"], "image_size": 64},
        "train": {"epochs": 1, "batch_size": 16, "optimizer": {"name": "adam", "lr": 0.001}, "seed": 0,
                  "max_failures": 0},
        "resources": {"workers": 1, "cpus_per_worker": 1},
    }
    for key, value in changes.items():
        node = data
        parts = key.split("__")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return run_config_from_dict(data)
