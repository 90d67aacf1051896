"""Hybrid: Wang, Chen and Zhou, "Hybrid Coarse-Fine Classification for Head Pose Estimation"
(arXiv 1901.06778; reference code haofanwang/accurate-head-pose).

docs/methods.md#hybrid. Per angle, five heads over [-99, 99): 198 fine bins of 1 degree and auxiliary
heads of 66, 18, 6 and 2 bins (3, 11, 33 and 99 degrees). Per angle, summed over the angles,

    L = alpha * MSE(E_198[angle], angle) + w198 CE_198 + w66 CE_66 + w18 CE_18 + w6 CE_6 + w2 CE_2

with hard (one-hot) labels, the expectation over the fine bins ("integrated regression") and the
MSE in degrees^2. ``aux_weights`` are (w198, w66, w18, w6, w2), default (7, 5, 3, 1, 1), alpha 2.

Faithful: ``decode="edge"`` (``E[i] - 99``, 0.5 degrees low) and ``roll_bug=True``: the released
``train_hopenet.py`` adds pitch's 2-bin CE to roll's loss where roll's own belongs (a copy-paste
bug), so pitch's 2-bin head is trained twice and roll's not at all. Recommended (default):
``decode="center"`` (``E[i] - 98.5``) and ``roll_bug=False`` (roll's own 2-bin CE). Both clamp +99
into the last bin instead of producing label 198 (docs/methods.md#hybrid).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from pydantic import Field

from ldlpose._lazy import LazyModule
from ldlpose.geometry import BinScheme
from ldlpose.methods._base import ANGLES, batch_angles, detached, mse_deg2
from ldlpose.methods._bins import BinMethod, one_hot
from ldlpose.methods._hparams import DECODE_DOC, Decode, Hparams, hparam, method_hparams
from ldlpose.methods._registry import register

if TYPE_CHECKING:
    import torch
    import torch.nn.functional as F
else:  # torch loads on first use (ldlpose._lazy)
    torch = LazyModule("torch")
    F = LazyModule("torch.nn.functional")

# Output suffix -> bins over [-99, 99): the fine head, then the auxiliary ones (weights in this order).
HEADS = {
    "": BinScheme(-99.0, 99.0, 1.0),
    "_66": BinScheme(-99.0, 99.0, 3.0),
    "_18": BinScheme(-99.0, 99.0, 11.0),
    "_6": BinScheme(-99.0, 99.0, 33.0),
    "_2": BinScheme(-99.0, 99.0, 99.0),
}


AuxWeight = Annotated[float, Field(ge=0.0, le=100.0)]


@method_hparams
class HybridHparams(Hparams):
    method = "hybrid"
    alpha: float = hparam(2.0, "weight of the degrees^2 MSE on the fine-bin expectation", range=(0.0, 10.0))
    aux_weights: tuple[AuxWeight, AuxWeight, AuxWeight, AuxWeight, AuxWeight] = hparam(
        (7.0, 5.0, 3.0, 1.0, 1.0), "CE weights of the 198, 66, 18, 6 and 2-bin heads", range=(0.0, 100.0)
    )
    decode: Decode = hparam("center", DECODE_DOC, choices=("center", "edge"))
    roll_bug: bool = hparam(False, "roll's 2-bin CE is pitch's, as in the released code (faithful only)",
                            choices=(False, True))


@register("hybrid")
class Hybrid(BinMethod):
    Hparams = HybridHparams
    hparams: HybridHparams
    faithful = {"decode": "edge", "roll_bug": True}

    @property
    def schemes(self):
        return {a + suffix: scheme for suffix, scheme in HEADS.items() for a in ANGLES}

    def targets(self, angles_deg: torch.Tensor) -> dict[str, torch.Tensor]:
        """One-hot labels for every head: "yaw" (198 fine bins), "pitch", "roll", "yaw_66", ..., "roll_2"."""
        return {
            a + suffix: one_hot(scheme, angles_deg[:, i])
            for suffix, scheme in HEADS.items()
            for i, a in enumerate(ANGLES)
        }

    def loss(self, outputs, batch):
        angles = batch_angles(batch)
        logits = self.split(outputs)
        parts = {f"ce_{scheme.num_bins}": sum(self._ce(logits, suffix, scheme, angles, i) for i in range(3))
                 for suffix, scheme in HEADS.items()}
        ce = sum(w * term for w, term in zip(self.hparams.aux_weights, parts.values()))
        parts["mse_deg2"] = mse_deg2(self.decode(outputs), angles)
        return ce + self.hparams.alpha * parts["mse_deg2"], detached(parts)

    def _ce(self, logits, suffix: str, scheme: BinScheme, angles, i: int):
        if self.hparams.roll_bug and suffix == "_2" and ANGLES[i] == "roll":
            i = ANGLES.index("pitch")  # the released code's loss_roll adds loss_pitch_4
        return F.cross_entropy(logits[ANGLES[i] + suffix], scheme.index(angles[:, i]))
