"""Fixtures and helpers of the tracking tests (imported by the test modules; no conftest.py, whose
module name other test folders import).

* The ``mlflow_server`` fixture (a real server on 127.0.0.1) lives in ``tests/conftest.py``.
* Checkpoints are ResNet-18 at 32 px, random or after a few SGD steps on synthhead images, written
  in the training loop's format (``checkpoint.pt`` = PoseNet state dict + run config as a dict +
  metrics + epoch).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

IMAGE_SIZE = 32


def synth_samples(count: int, split: str = "test", size: int = IMAGE_SIZE) -> tuple[list[np.ndarray], np.ndarray]:
    from ldlpose.data import synthhead

    samples = list(synthhead.generate(split, count, size=size, seed=0))
    return [s.image for s in samples], np.stack([s.angles_deg for s in samples])


def make_checkpoint(directory: Path, method_name: str = "gldl", *, steps: int = 0, seed: int = 0,
                    image_size: int = IMAGE_SIZE) -> Path:
    """A checkpoint folder as the training loop writes it; ``steps`` SGD steps on synthhead images."""
    from ldlpose import methods
    from ldlpose.config import run_config_from_dict
    from ldlpose.inference.predictor import IMAGENET_MEAN, IMAGENET_STD, preprocess
    from ldlpose.models import build_model

    torch.manual_seed(seed)
    run = run_config_from_dict({"name": "tiny", "method": {"name": method_name},
                                "model": {"backbone": "resnet18"}, "data": {"image_size": image_size}})
    method = methods.create(method_name)
    net = build_model(method, "resnet18")
    if steps:
        images, angles = synth_samples(16, split="train", size=image_size)
        x = (preprocess(images, image_size) - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(
            IMAGENET_STD).view(1, 3, 1, 1)
        batch = {"angles_deg": torch.as_tensor(angles, dtype=torch.float32)}
        optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
        net.train()
        for _ in range(steps):
            loss, _ = method.loss(net(x), batch)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    directory.mkdir(parents=True, exist_ok=True)
    torch.save({"model": net.state_dict(), "run": run.to_dict(), "metrics": {"val_mae": 30.0, "synth_mae": 31.0},
                "epoch": steps}, directory / "checkpoint.pt")
    return directory


