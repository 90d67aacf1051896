"""GLDL: Liu, Chen, Bai, Li and Lian, "Facial Pose Estimation by Deep Learning from Label
Distributions" (arXiv 1904.13102).

docs/methods.md#gldl. HopeNet's 66-bin heads trained towards Gaussian label distributions D with

    L = L_Eu + L_KL + alpha * MSE(E[angle], angle)          (the paper's eq. 5 and section 3.2)

per angle, summed over yaw, pitch and roll: L_Eu = ||D - F||_2 is the plain, *non-squared* L2
norm between the target and the softmax F, L_KL = KL(D || F) in nats, the MSE in degrees^2 on the
decoded angle. HopeNet's cross-entropy is dropped. sigma is in bins (3 degrees each; paper: 4).

Targets (the paper's eqs. 1-3): ``target="literal"`` is eq. 1 as printed, a softmax over the Gaussian
values divided by sigma, g_l = exp(-(l - a)^2 / (2 sigma^2)) / sigma. Its inputs differ by at most
1/sigma, so the target is nearly uniform (sigma 4: peak 0.0187 against 0.0152; a -30 degree label
decodes to about -2.6). ``"normalized"`` (default, recommended, what the paper's Fig. 3 shows) is
the Gaussian divided by its sum over the bins.

Faithful: ``target="literal", center="bin", decode="edge"``. Recommended (defaults):
``target="normalized", center="continuous", decode="center"``; alpha 0.01 is the paper's best on
AFLW2000.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from ldlpose._lazy import LazyModule
from ldlpose.geometry import HOPENET_BINS
from ldlpose.methods._base import ANGLES, batch_angles, detached, mse_deg2, tensor_sum
from ldlpose.methods._bins import (
    BinMethod,
    gaussian,
    kl_divergence,
    squared_bin_distance,
)
from ldlpose.methods._hparams import (
    ALPHA_DOC,
    CENTER_DOC,
    DECODE_DOC,
    SIGMA_RANGE,
    Center,
    Decode,
    Hparams,
    hparam,
    method_hparams,
)
from ldlpose.methods._registry import register

if TYPE_CHECKING:
    import torch
else:  # torch loads on first use (ldlpose._lazy)
    torch = LazyModule("torch")


@method_hparams
class GldlHparams(Hparams):
    method = "gldl"
    sigma: float = hparam(4.0, "Gaussian width in bins of 3 degrees (paper: 4)", range=SIGMA_RANGE)
    alpha: float = hparam(0.01, ALPHA_DOC, range=(0.0, 10.0))
    target: Literal["normalized", "literal"] = hparam(
        "normalized", "Gaussian over the bins divided by its sum, or eq. 1 as printed",
        choices=("normalized", "literal"),
    )
    center: Center = hparam("continuous", CENTER_DOC, choices=("continuous", "bin"))
    decode: Decode = hparam("center", DECODE_DOC, choices=("center", "edge"))


@register("gldl")
class GLDL(BinMethod):
    Hparams = GldlHparams
    hparams: GldlHparams
    faithful = {"target": "literal", "center": "bin", "decode": "edge"}

    @property
    def schemes(self):
        return dict.fromkeys(ANGLES, HOPENET_BINS)

    @property
    def target_resolution_deg(self) -> float:
        return 0.0 if self.hparams.center == "continuous" else super().target_resolution_deg

    def targets(self, angles_deg: torch.Tensor) -> dict[str, torch.Tensor]:
        return {a: self._distribution(angles_deg[:, i]) for i, a in enumerate(ANGLES)}

    def _distribution(self, angle_deg: torch.Tensor) -> torch.Tensor:
        sigma, center = self.hparams.sigma, self.hparams.center
        if self.hparams.target == "normalized":
            return gaussian(HOPENET_BINS, angle_deg, sigma, center)
        g = torch.exp(-squared_bin_distance(HOPENET_BINS, angle_deg, center) / (2 * sigma**2)) / sigma
        return torch.softmax(g, dim=-1)  # the paper's eq. 1: the Gaussian values are softmax *inputs*

    def loss(self, outputs, batch):
        angles = batch_angles(batch)
        logits, targets = self.split(outputs), self.targets(angles)
        euclid = tensor_sum(
            torch.linalg.vector_norm(targets[a].to(outputs) - torch.softmax(logits[a], dim=-1), dim=-1).mean()
            for a in ANGLES
        )
        kl = tensor_sum(kl_divergence(logits[a], targets[a]) for a in ANGLES)
        mse = mse_deg2(self.decode(outputs), angles)
        total = euclid + kl + self.hparams.alpha * mse
        return total, detached({"euclid": euclid, "kl": kl, "mse_deg2": mse})
