"""RankPose: Dai, Wong and Chen, "RankPose: Learning Generalised Feature with Rank Supervision for
Head Pose Estimation" (BMVC 2020, arXiv 2005.10984; code seathiefwang/RankPose).

docs/methods.md#rankpose. A bounded head y_k = 180 * cos(f, w_k) (the cosine between the pooled feature f
and a weight vector per angle, :class:`~ldlpose.methods._cosine.CosineHead`) outputs the angles in
degrees directly. The loss

    L = MSE(y_hat, y) + rank_weight * sum_k MarginRanking(s(y_hat_i,k), s(y_hat_j,k), sign(y_i,k - y_j,k))

takes the MSE (degrees^2, batch mean, summed over the angles; see ``mse_reduction`` for the released
code's balance) over every sample and the margin
ranking loss max(0, -t (x1 - x2) + margin) (degrees; mean over pairs, summed over the angles) over
every pair i < j of samples with the same ``batch["subject"]`` (same identity, different synthetic
view); pairs with equal labels are left out. With no subject ids or no pair the rank term is 0.

Faithful: ``signed=False``, s = |.| as the reference code, which ranks *absolute* predictions
against the order of *signed* labels (wrong whenever a label is negative), rank_weight 1, margin 0,
and ``mse_reduction="released"``: the released loss is ``MSE(y1_hat, y1) + MSE(y2_hat, y2)`` with
``nn.MSELoss()`` averaging over the batch *and the three angles*, i.e. 2/3 of the angle sum used
here, so its rank term weighs 1.5x as much against the MSE (``rank_weight=1.5`` with the sum is the
same balance).
Recommended (default): ``signed=True``, s = identity. ``needs_pairs`` tells the data pipeline to
put same-subject pairs in each batch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from ldlpose._lazy import LazyModule
from ldlpose.methods._base import ANGLES, Method, batch_angles, detached, mse_deg2
from ldlpose.methods._hparams import Hparams, hparam, method_hparams
from ldlpose.methods._registry import register

if TYPE_CHECKING:
    import torch
    import torch.nn.functional as F
    from torch import nn
else:  # torch loads on first use (ldlpose._lazy)
    torch = LazyModule("torch")
    F = LazyModule("torch.nn.functional")
    nn = LazyModule("torch.nn")

_SIGNS = (-1.0, 1.0, -1.0)  # flip: yaw and roll negate
RELEASED_MSE_SCALE = 2.0 / 3.0
"""MSE(y1) + MSE(y2), each a mean over batch and 3 angles, against the batch mean summed over angles."""


@method_hparams
class RankposeHparams(Hparams):
    method = "rankpose"
    rank_weight: float = hparam(1.0, "weight of the margin ranking loss", range=(0.0, 10.0))
    margin: float = hparam(0.0, "ranking margin in degrees", range=(0.0, 30.0))
    signed: bool = hparam(True, "rank signed predictions (true) or absolute ones as the reference",
                          choices=(True, False))
    mse_reduction: Literal["sum", "released"] = hparam(
        "sum", "MSE summed over yaw/pitch/roll, or 'released': two per-image nn.MSELoss() means added (2/3 of the sum)",
        choices=("sum", "released"))


@register("rankpose")
class RankPose(Method):
    Hparams = RankposeHparams
    hparams: RankposeHparams
    needs_pairs = True
    has_distributions = False
    faithful = {"signed": False, "mse_reduction": "released"}
    valid_range_deg = ((-180.0, 180.0),) * 3

    @property
    def layout(self):
        return {a: slice(i, i + 1) for i, a in enumerate(ANGLES)}

    def head(self, in_features: int) -> nn.Module:
        from ldlpose.methods._cosine import CosineHead  # an nn.Module: defining it imports torch

        return CosineHead(in_features, self.num_outputs)

    def targets(self, angles_deg: torch.Tensor) -> dict[str, torch.Tensor]:
        """The angles themselves (no label distribution)."""
        return {"angles_deg": angles_deg}

    def loss(self, outputs, batch):
        angles = batch_angles(batch).to(outputs)
        self.split(outputs)  # validates the shape
        mse = mse_deg2(outputs, angles) * (RELEASED_MSE_SCALE if self.hparams.mse_reduction == "released" else 1.0)
        rank, pairs = self._rank_loss(outputs, angles, batch.get("subject"))
        total = mse + self.hparams.rank_weight * rank
        return total, detached({"mse_deg2": mse, "rank": rank, "pairs": torch.tensor(float(pairs))})

    def _rank_loss(self, outputs, angles, subject) -> tuple[torch.Tensor, int]:
        if subject is None:
            return outputs.new_zeros(()), 0
        subject = subject.to(outputs.device)
        first, second = torch.triu_indices(len(subject), len(subject), offset=1, device=outputs.device)
        same = subject[first] == subject[second]
        first, second = first[same], second[same]
        order = torch.sign(angles[first] - angles[second])  # (pairs, 3)
        ranked = outputs if self.hparams.signed else outputs.abs()
        hinge = torch.relu(-order * (ranked[first] - ranked[second]) + self.hparams.margin)
        counted = order != 0
        per_angle = (hinge * counted).sum(dim=0) / counted.sum(dim=0).clamp_min(1)
        return per_angle.sum(), int(same.sum())

    def decode(self, outputs):
        self.split(outputs)
        return outputs

    def flip_outputs(self, outputs):
        self.split(outputs)
        return outputs * outputs.new_tensor(_SIGNS)

    def outputs_for(self, angles_deg):
        return angles_deg.clone()
