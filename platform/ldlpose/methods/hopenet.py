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

from typing import TYPE_CHECKING

from ldlpose._lazy import LazyModule
from ldlpose.geometry import HOPENET_BINS
from ldlpose.methods._base import ANGLES, batch_angles, detached, mse_deg2, tensor_sum
from ldlpose.methods._bins import BinMethod
from ldlpose.methods._hparams import ALPHA_DOC, DECODE_DOC, Decode, Hparams, hparam, method_hparams
from ldlpose.methods._registry import register

if TYPE_CHECKING:
    import torch
    import torch.nn.functional as F
else:  # torch loads on first use (ldlpose._lazy)
    torch = LazyModule("torch")
    F = LazyModule("torch.nn.functional")


@method_hparams
class HopenetHparams(Hparams):
    method = "hopenet"
    # alpha = 1 is HopeNet's released model best on BIWI (alpha = 2 best on AFLW2000; code default 0.001).
    alpha: float = hparam(1.0, ALPHA_DOC, range=(0.0, 10.0))
    decode: Decode = hparam("center", DECODE_DOC, choices=("center", "edge"))



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
