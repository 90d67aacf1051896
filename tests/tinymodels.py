"""Small models that tests of bad input build in seconds: a random-init ShuffleNetV2 x0.5 checkpoint."""

from __future__ import annotations

from pathlib import Path

SIZE = 64


def tiny_checkpoint(directory: Path, method: str = "gldl") -> Path:
    """A checkpoint folder of an untrained ``method`` on ShuffleNetV2 x0.5 at 64 px (no training data
    on this machine, so no crop recorded)."""
    import torch

    from ldlpose import methods
    from ldlpose.config import run_config_from_dict
    from ldlpose.models import build_model

    torch.manual_seed(0)
    directory.mkdir(parents=True, exist_ok=True)
    run = run_config_from_dict({"name": "tiny", "method": {"name": method},
                                "model": {"backbone": "shufflenet_v2_x0_5", "weights": "none"},
                                "data": {"root": str(directory / "absent"), "image_size": SIZE}})
    net = build_model(methods.create(method), "shufflenet_v2_x0_5", "none")
    torch.save({"model": net.state_dict(), "run": run.to_dict(), "metrics": {}, "epoch": 0},
               directory / "checkpoint.pt")
    return directory
