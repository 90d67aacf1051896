"""6DRepNet: Hempel, Abdelrahman and Al-Hamadi, "6D Rotation Representation for Unconstrained Head
Pose Estimation" (ICIP 2022; reference code thohemp/6DRepNet). A non-LDL reference method.

docs/methods.md#6drepnet. The head outputs two 3-vectors a1, a2; Gram-Schmidt turns them into the columns
x = normalize(a1), z = normalize(x cross a2), y = z cross x of the head-frame rotation
R = Rz(roll) Ry(yaw) Rx(pitch) (:func:`ldlpose.geometry.sixd_to_matrix`). The loss is the mean
geodesic distance to the ground-truth rotation,

    L = mean arccos(clamp((tr(R R_hat^T) - 1) / 2, -1 + 1e-7, 1 - 1e-7))     (radians, as the code)

and decoding converts R_hat back to yaw/pitch/roll. Everything here is faithful; there are no
hyperparameters (the paper's lr, batch and epochs belong to training). Valid yaw is |yaw| < 90
(the Euler inverse's unique range); pitch and roll cover +/-180.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from ldlpose._lazy import LazyModule
from ldlpose.geometry import euler_to_matrix, geodesic_deg, matrix_to_euler, sixd_to_matrix
from ldlpose.methods._base import Method, batch_angles, detached
from ldlpose.methods._hparams import Hparams, method_hparams
from ldlpose.methods._registry import register

if TYPE_CHECKING:
    import torch
else:  # torch loads on first use (ldlpose._lazy)
    torch = LazyModule("torch")

# Mirroring maps R to G R G (G = diag(-1, 1, 1), docs/methods.md#flip). Gram-Schmidt commutes with it when a1
# turns into -G a1 and a2 into G a2 (a cross product of reflected vectors flips sign).
_FLIP_SIGNS = (1.0, -1.0, -1.0, -1.0, 1.0, 1.0)


@method_hparams
class SixdrepnetHparams(Hparams):
    """None: the paper's lr, batch and epochs belong to training."""

    method = "sixdrepnet"


@register("sixdrepnet")
class SixDRepNet(Method):
    Hparams = SixdrepnetHparams
    hparams: SixdrepnetHparams
    has_distributions = False
    valid_range_deg = ((-90.0, 90.0), (-180.0, 180.0), (-180.0, 180.0))

    @property
    def layout(self):
        return {"a1": slice(0, 3), "a2": slice(3, 6)}

    def targets(self, angles_deg: torch.Tensor) -> dict[str, torch.Tensor]:
        """The head-frame rotation (N, 3, 3) it regresses (no label distribution)."""
        return {"rotation": euler_to_matrix(angles_deg)}

    def loss(self, outputs, batch):
        truth = euler_to_matrix(batch_angles(batch).to(outputs))
        geodesic = geodesic_deg(sixd_to_matrix(self._checked(outputs)), truth, eps=1e-7).mean()
        radians = geodesic * (math.pi / 180.0)
        return radians, detached({"geodesic_deg": geodesic})

    def decode(self, outputs):
        return matrix_to_euler(sixd_to_matrix(self._checked(outputs)))

    def flip_outputs(self, outputs):
        return self._checked(outputs) * outputs.new_tensor(_FLIP_SIGNS)

    def outputs_for(self, angles_deg):
        rotation = euler_to_matrix(angles_deg)
        return torch.cat([rotation[:, :, 0], rotation[:, :, 1]], dim=1)

    def _checked(self, outputs: torch.Tensor) -> torch.Tensor:
        self.split(outputs)  # validates the shape
        return outputs
