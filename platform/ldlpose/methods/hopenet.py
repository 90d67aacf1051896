"""HopeNet: Ruiz, Chong and Rehg, "Fine-Grained Head Pose Estimation Without Keypoints" (CVPRW 2018).

docs/methods.md#hopenet. Three 66-way heads (3-degree bins over [-99, 99), docs/methods.md#bins), one per angle; per
angle the loss is

    L = CE(logits, bin) + alpha * MSE(E[angle], angle)

summed over yaw, pitch and roll, with E[angle] the softmax expectation in degrees and the MSE in
degrees^2 (as in the reference code, whose alpha values 1 and 2 are the released models).

Faithful: ``decode="edge"`` (``3 * E[i] - 99``, 1.5 degrees low on average). Recommended (default):
``decode="center"`` (``3 * E[i] - 97.5``), used for both the MSE term and evaluation (docs/methods.md#pitfalls, 3).
Out-of-range labels are clamped to the end bins instead of producing class 66 (docs/methods.md#bins).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ldlpose.config.hparams import HopenetHparams
from ldlpose.geometry import HOPENET_BINS
from ldlpose.methods._base import ANGLES, batch_angles, detached, mse_deg2, tensor_sum
from ldlpose.methods._bins import BinMethod
from ldlpose.methods._registry import register


@register("hopenet")
class HopeNet(BinMethod):
    Hparams = HopenetHparams
    hparams: HopenetHparams
    faithful = {"decode": "edge"}

    @property
    def schemes(self):
        return dict.fromkeys(ANGLES, HOPENET_BINS)

    def targets(self, angles_deg: torch.Tensor) -> dict[str, torch.Tensor]:
        """One-hot bins: HopeNet trains on hard labels."""
        return self.one_hot_targets(angles_deg)

    def loss(self, outputs, batch):
        angles = batch_angles(batch)
        logits = self.split(outputs)
        ce = tensor_sum(F.cross_entropy(logits[a], HOPENET_BINS.index(angles[:, i])) for i, a in enumerate(ANGLES))
        mse = mse_deg2(self.decode(outputs), angles)
        return ce + self.hparams.alpha * mse, detached({"ce": ce, "mse_deg2": mse})
