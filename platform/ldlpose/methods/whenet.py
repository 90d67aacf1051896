"""WHENet: Zhou and Gregson, "WHENet: Real-time Fine-Grained Estimation for Wide Range Head Pose"
(BMVC 2020; demo code Ascend-Research/HeadPoseEstimation-WHENet).

docs/methods.md#whenet. A full-range yaw head of 120 bins (3 degrees over [-180, 180)) and HopeNet's 66
bins for pitch and roll. Per angle, summed over the angles,

    L = CE(logits, bin) + alpha * E^2,   E_yaw = min(|yaw_hat - yaw|, 360 - |yaw_hat - yaw|)

i.e. HopeNet's loss with the yaw error *wrapped* to the smallest rotation (the "wrapped loss"),
in degrees^2. The exact equation and weights of the paper are unverified (docs/methods.md#whenet); alpha = 1
follows HopeNet's released model.

Faithful: ``yaw_decode="linear", decode="edge"`` (the demo's ``3 * E[i] - 180``, which averages
mass split across the +/-180 seam to about 0). Recommended (defaults): ``yaw_decode="circular"``,
``atan2(sum p_i sin c_i, sum p_i cos c_i)`` over bin centres c_i, and ``decode="center"`` for pitch
and roll (and for linear yaw).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from ldlpose._lazy import LazyModule
from ldlpose.geometry import HOPENET_BINS, BinScheme
from ldlpose.methods._base import ANGLES, batch_angles, detached, tensor_sum
from ldlpose.methods._bins import BinMethod
from ldlpose.methods._hparams import DECODE_DOC, Decode, Hparams, hparam, method_hparams
from ldlpose.methods._registry import register

if TYPE_CHECKING:
    import torch
    import torch.nn.functional as F
else:  # torch loads on first use (ldlpose._lazy)
    torch = LazyModule("torch")
    F = LazyModule("torch.nn.functional")

YAW_BINS = BinScheme(-180.0, 180.0, 3.0)


def wrap_deg(angles_deg: torch.Tensor) -> torch.Tensor:
    """Angles wrapped into [-180, 180)."""
    return torch.remainder(angles_deg + 180.0, 360.0) - 180.0


@method_hparams
class WhenetHparams(Hparams):
    method = "whenet"
    alpha: float = hparam(1.0, "weight of the (wrapped for yaw) degrees^2 squared error", range=(0.0, 10.0))
    yaw_decode: Literal["circular", "linear"] = hparam(
        "circular", "yaw as the circular mean of bin centres, or linear expectation", choices=("circular", "linear")
    )
    decode: Decode = hparam("center", DECODE_DOC, choices=("center", "edge"))


@register("whenet")
class WHENet(BinMethod):
    Hparams = WhenetHparams
    hparams: WhenetHparams
    faithful = {"yaw_decode": "linear", "decode": "edge"}
    valid_range_deg = ((-180.0, 180.0), (-99.0, 99.0), (-99.0, 99.0))

    @property
    def schemes(self):
        return {"yaw": YAW_BINS, "pitch": HOPENET_BINS, "roll": HOPENET_BINS}

    def targets(self, angles_deg: torch.Tensor) -> dict[str, torch.Tensor]:
        """One-hot bins; yaw is wrapped into [-180, 180) first."""
        return self.one_hot_targets(self._wrap_yaw(angles_deg))

    def decode_distributions(self, distributions):
        angles = super().decode_distributions(distributions)
        if self.hparams.yaw_decode == "linear":
            return angles
        centers = torch.deg2rad(YAW_BINS.centers(angles.device).to(angles.dtype))
        p = distributions["yaw"]
        yaw = torch.rad2deg(torch.atan2((p * centers.sin()).sum(-1), (p * centers.cos()).sum(-1)))
        return torch.cat([yaw[:, None], angles[:, 1:]], dim=1)

    def loss(self, outputs, batch):
        angles = self._wrap_yaw(batch_angles(batch))
        logits = self.split(outputs)
        ce = tensor_sum(F.cross_entropy(logits[a], self.schemes[a].index(angles[:, i])) for i, a in enumerate(ANGLES))
        error = self.decode(outputs) - angles.to(outputs)
        error = torch.cat([wrap_deg(error[:, :1]), error[:, 1:]], dim=1)
        mse = (error**2).mean(dim=0).sum()
        return ce + self.hparams.alpha * mse, detached({"ce": ce, "mse_deg2": mse})

    @staticmethod
    def _wrap_yaw(angles_deg: torch.Tensor) -> torch.Tensor:
        return torch.cat([wrap_deg(angles_deg[:, :1]), angles_deg[:, 1:]], dim=1)
