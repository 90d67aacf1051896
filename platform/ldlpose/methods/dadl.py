"""DADL: Zhao et al., "Double Asymmetric Distribution Learning for head pose estimation in wisdom
museum" (JKSUCIS 2023, doi 10.1016/j.jksuci.2023.101869).

docs/methods.md#dadl. HopeNet's 66-bin heads with, per angle (the paper's eq. 13, summed over the angles),

    L = CE(one-hot, p) + alpha * MSE(E[angle], angle) + beta * KL(D_soft || p)

where D_soft is a Gaussian over the bins normalised by its sum (the paper's eqs. 2-8) whose width differs
per angle (the "between-angle asymmetry"). The MSE is in degrees^2 on the decoded angle. Eq. 16,
which rewrites eq. 13 incorrectly, is not implemented.

Widths are in bins of 3 degrees: x in eqs. 2-8 is undefined and reading it in degrees would turn
every setting into a one-hot label (docs/methods.md#dadl). The paper tunes one setting per test set; both are
presets (``create("dadl", preset="biwi")``; explicit keywords override a preset's values):

* ``"aflw2000"`` (the defaults): sigma 1 / 2 / 0.5 bins (yaw / pitch / roll), alpha 3, beta 3;
* ``"biwi"``: sigma 0.35 / 0.6 / 0.3 bins (nearly one-hot: peak mass 0.967 / 0.664 / 0.992 with a
  bin-centred label), alpha 1, beta 2.

Faithful: ``center="bin", decode="edge"`` (eq. 9 decodes the argmax bin's left edge; the
expectation used here is what the paper's section 3.5 feeds the MSE). Recommended (defaults):
``center="continuous", decode="center"``. Note that a continuous Gaussian narrower than about 0.4
bins is not resolved by the bins: its expectation can be off by up to about 0.6 degrees.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from ldlpose._lazy import LazyModule
from ldlpose.geometry import HOPENET_BINS
from ldlpose.methods._base import ANGLES, batch_angles, detached, mse_deg2, tensor_sum
from ldlpose.methods._bins import (
    BinMethod,
    gaussian,
    kl_divergence,
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
    import torch.nn.functional as F
else:  # torch loads on first use (ldlpose._lazy)
    torch = LazyModule("torch")
    F = LazyModule("torch.nn.functional")


@method_hparams
class DadlHparams(Hparams):
    method = "dadl"
    # The paper tunes one setting per test set (ldlpose.methods.dadl); aflw2000 is the defaults.
    presets: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        "aflw2000": {"sigma_yaw": 1.0, "sigma_pitch": 2.0, "sigma_roll": 0.5, "alpha": 3.0, "beta": 3.0},
        "biwi": {"sigma_yaw": 0.35, "sigma_pitch": 0.6, "sigma_roll": 0.3, "alpha": 1.0, "beta": 2.0},
    }

    sigma_yaw: float = hparam(1.0, "yaw Gaussian width in bins of 3 degrees", range=SIGMA_RANGE)
    sigma_pitch: float = hparam(2.0, "pitch Gaussian width in bins of 3 degrees", range=SIGMA_RANGE)
    sigma_roll: float = hparam(0.5, "roll Gaussian width in bins of 3 degrees", range=SIGMA_RANGE)
    alpha: float = hparam(3.0, ALPHA_DOC, range=(0.0, 10.0))
    beta: float = hparam(3.0, "weight of KL(soft label || prediction)", range=(0.0, 10.0))
    center: Center = hparam("continuous", CENTER_DOC, choices=("continuous", "bin"))
    decode: Decode = hparam("center", DECODE_DOC, choices=("center", "edge"))


@register("dadl")
class DADL(BinMethod):
    Hparams = DadlHparams
    hparams: DadlHparams
    faithful = {"center": "bin", "decode": "edge"}

    @property
    def schemes(self):
        return dict.fromkeys(ANGLES, HOPENET_BINS)

    @property
    def sigmas_bins(self) -> tuple[float, float, float]:
        hp = self.hparams
        return hp.sigma_yaw, hp.sigma_pitch, hp.sigma_roll

    @property
    def target_resolution_deg(self) -> float:
        return 0.0 if self.hparams.center == "continuous" else super().target_resolution_deg

    def targets(self, angles_deg: torch.Tensor) -> dict[str, torch.Tensor]:
        """The soft labels (the hard labels are the angles' bins)."""
        return {
            a: gaussian(HOPENET_BINS, angles_deg[:, i], sigma, self.hparams.center)
            for i, (a, sigma) in enumerate(zip(ANGLES, self.sigmas_bins))
        }

    def loss(self, outputs, batch):
        angles = batch_angles(batch)
        logits, soft = self.split(outputs), self.targets(angles)
        ce = tensor_sum(F.cross_entropy(logits[a], HOPENET_BINS.index(angles[:, i])) for i, a in enumerate(ANGLES))
        kl = tensor_sum(kl_divergence(logits[a], soft[a]) for a in ANGLES)
        mse = mse_deg2(self.decode(outputs), angles)
        total = ce + self.hparams.alpha * mse + self.hparams.beta * kl
        return total, detached({"ce": ce, "mse_deg2": mse, "kl": kl})
