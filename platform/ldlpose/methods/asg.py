"""ASG-LDL: Cao, Liu, Wang and Chen, "Towards Unbiased Label Distribution Learning for Facial Pose
Estimation Using Anisotropic Spherical Gaussian" (ECCV 2022, arXiv 2208.09122; code
anArkitek/ASG-LDL). The paper text was not available; this follows the released code (docs/methods.md#asg-ldl).

Each column of the image-frame rotation R_img = Rx(pitch) Ry(-yaw) Rz(roll) (left, down, front;
:func:`ldlpose.geometry.image_matrix`) gets a distribution over ``num_points`` Fibonacci sphere
points p. The head outputs six bandwidths (lambda_l, lambda_d, lambda_f, mu_l, mu_d, mu_f) and three
P-way logits. The target of the column with axis v and tangent axes (x, y) = (d, f), (f, l), (l, d)
for v = l, d, f is built from the anisotropic spherical Gaussian (Xu et al., TOG 2013)

    a(p) = max(0, v . p) * exp(-lambda (x . p)^2 - mu (y . p)^2)

with the *predicted* bandwidths, not detached (so the KL term teaches them, as the reference). With
v_hat = normalize(sum_i P_i p_i) the loss is

    sum_k MSE(v_hat_k, v_k) + soft_weight * sum_k KL(T_k || P_k)
      + shape_weight * mean(sum 1/lambda^2 + 1/mu^2) + ortho_weight * mean(sum_{k<m} (v_hat_k . v_hat_m)^2)

(MSE over the 3 components of unit vectors, no degrees; every term a batch mean, the reference
sums the shape term over the batch). Decoding stacks the v_hat as columns, projects them to the
nearest rotation by SVD with the reflection corrected (the reference's U V^T is not) and converts
to Euler angles.

Faithful: ``target="softmax"`` (T = softmax(a): since a is in [0, 1] the target is almost uniform,
docs/methods.md#asg-ldl) and ``positive_bandwidth=False`` (raw, possibly negative bandwidths); released run
soft_weight 5, shape_weight 0, ortho_weight 0, 600 points. Recommended (defaults): ``target=
"normalized"`` (T = a / sum a) or ``"tempered"`` (softmax(temperature * a)), bandwidths
softplus(raw) + 1e-3, log-softmax for P. The flip is exact to numerical precision for spread
distributions and within the point spacing for ones sitting on a point or two (see ``_sphere``).

MAEV. ASG's ``tester.py`` measures MAEV on the raw expectation vectors v_hat (normalised, not
orthogonalised); the platform's ``maev`` (:mod:`ldlpose.metrics`) uses the columns of the rotation
built from the decoded angles, the same for every method. The two differ by 0.03-0.5 degrees;
:meth:`ASG.expectation_vectors` and :func:`ldlpose.metrics.maev_from_vectors` give ASG's, reported
beside the uniform one as ``maev_asg``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from ldlpose._lazy import LazyModule
from ldlpose.geometry import image_matrix, image_matrix_to_euler, project_to_rotation
from ldlpose.methods._base import Method, batch_angles, detached
from ldlpose.methods._hparams import Hparams, hparam, method_hparams
from ldlpose.methods._registry import register
from ldlpose.methods._sphere import fibonacci_sphere, mirror_logits

if TYPE_CHECKING:
    import torch
    import torch.nn.functional as F
else:  # torch loads on first use (ldlpose._lazy)
    torch = LazyModule("torch")
    F = LazyModule("torch.nn.functional")

LOBES = ("left", "down", "front")
# The mirror G R G (docs/methods.md#flip) on each column.
_FLIP_SIGNS = {"left": (1.0, -1.0, -1.0), "down": (-1.0, 1.0, 1.0), "front": (-1.0, 1.0, 1.0)}
_MIN_BANDWIDTH = 1e-3
_BACK = -1e4  # log a(p) behind the lobe, where max(0, v . p) is 0 (finite, so no 0 * inf in the KL)
REFERENCE_BANDWIDTH = 10.0
"""Bandwidth used where none is predicted (outputs_for, expectation_bias): a lobe about 13 degrees wide."""


@method_hparams
class AsgHparams(Hparams):
    method = "asg"
    num_points: int = hparam(600, "Fibonacci sphere points per distribution", range=(20, 2000))
    soft_weight: float = hparam(5.0, "weight of KL(target || prediction) (released run: 5)", range=(0.0, 100.0))
    shape_weight: float = hparam(0.0, "weight of the bandwidth regulariser 1/lambda^2 + 1/mu^2", range=(0.0, 100.0))
    ortho_weight: float = hparam(0.0, "weight of the predicted vectors' orthogonality penalty", range=(0.0, 100.0))
    target: Literal["normalized", "softmax", "tempered"] = hparam(
        "normalized", "a / sum a, softmax(a) as the reference, or softmax(temperature * a)",
        choices=("normalized", "softmax", "tempered"),
    )
    temperature: float = hparam(10.0, "multiplier of a in the 'tempered' target", range=(0.1, 1000.0))
    positive_bandwidth: bool = hparam(True, "bandwidths = softplus(raw) + 1e-3 (false: raw, as the reference)",
                                      choices=(True, False))


@register("asg")
class ASG(Method):
    Hparams = AsgHparams
    hparams: AsgHparams
    faithful = {"target": "softmax", "positive_bandwidth": False}
    valid_range_deg = ((-90.0, 90.0), (-180.0, 180.0), (-180.0, 180.0))

    def __init__(self, hparams=None):
        super().__init__(hparams)
        self.points = fibonacci_sphere(self.hparams.num_points)

    @property
    def layout(self):
        p = self.hparams.num_points
        return {"bandwidth": slice(0, 6)} | {k: slice(6 + i * p, 6 + (i + 1) * p) for i, k in enumerate(LOBES)}

    def bandwidths(self, outputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(lambdas, mus), each (N, 3) in the order left, down, front."""
        raw = self.split(outputs)["bandwidth"]
        if self.hparams.positive_bandwidth:
            raw = F.softplus(raw) + _MIN_BANDWIDTH
        return raw[:, :3], raw[:, 3:]

    def targets(self, angles_deg, *, lambdas, mus):  # type: ignore[override]  # per-sample bandwidths: see Method
        """{"left", "down", "front"}: (N, P) distributions over :attr:`points`, for (N, 3) bandwidths
        ``lambdas`` and ``mus`` in the order left, down, front."""
        return dict(zip(LOBES, self._log_targets(angles_deg, lambdas, mus).exp().unbind(1)))

    def reference_targets(self, angles_deg):
        bandwidth = torch.full_like(angles_deg, REFERENCE_BANDWIDTH)
        return self.targets(angles_deg, lambdas=bandwidth, mus=bandwidth)

    def _log_targets(self, angles_deg, lambdas, mus) -> torch.Tensor:
        """(N, 3 lobes, P) log target probabilities."""
        axes = image_matrix(angles_deg.to(lambdas)).transpose(1, 2)  # rows: left, down, front
        cos = axes @ self.points.to(lambdas).T  # (N, 3, P): v_k . p
        # lobe k: lambda along axis k+1, mu along axis k+2 (cyclic), as the reference.
        log_a = torch.log(cos.clamp_min(1e-30)).masked_fill(cos <= 0, _BACK)
        log_a = log_a - lambdas[..., None] * cos.roll(-1, dims=1) ** 2 - mus[..., None] * cos.roll(-2, dims=1) ** 2
        if self.hparams.target == "normalized":
            return torch.log_softmax(log_a, dim=-1)
        scale = self.hparams.temperature if self.hparams.target == "tempered" else 1.0
        return torch.log_softmax(scale * log_a.exp(), dim=-1)

    def loss(self, outputs, batch):
        angles = batch_angles(batch)
        parts = self.split(outputs)
        lambdas, mus = self.bandwidths(outputs)
        log_p = torch.stack([torch.log_softmax(parts[k], dim=-1) for k in LOBES], dim=1)  # (N, 3, P)
        vectors = F.normalize(log_p.exp() @ self.points.to(outputs), dim=-1)  # (N, 3 lobes, 3)
        truth = image_matrix(angles.to(outputs)).transpose(1, 2)
        log_t = self._log_targets(angles, lambdas, mus)
        terms = {
            "vector_mse": ((vectors - truth) ** 2).mean(dim=(0, 2)).sum(),
            "kl": (log_t.exp() * (log_t - log_p)).sum(dim=(1, 2)).mean(),
            "shape": (lambdas.pow(-2) + mus.pow(-2)).sum(dim=1).mean(),
            "ortho": (vectors[:, [0, 1, 0]] * vectors[:, [1, 2, 2]]).sum(-1).pow(2).sum(-1).mean(),
        }
        hp = self.hparams
        total = terms["vector_mse"] + hp.soft_weight * terms["kl"]
        for key, weight in (("shape", hp.shape_weight), ("ortho", hp.ortho_weight)):
            if weight > 0:  # skipped at 0: raw bandwidths near 0 would give 0 * inf
                total = total + weight * terms[key]
        return total, detached(terms)

    def decode(self, outputs):
        parts = self.split(outputs)
        return self.decode_distributions({k: torch.softmax(parts[k], dim=-1) for k in LOBES})

    def expectation_vectors(self, outputs) -> torch.Tensor:
        """(N, 3, 3): the normalised expectation vectors v_hat (rows: left, down, front) that ASG's
        tester scores MAEV on, before the SVD projection."""
        parts = self.split(outputs)
        return torch.stack([F.normalize(torch.softmax(parts[k], dim=-1) @ self.points.to(outputs), dim=-1)
                            for k in LOBES], dim=1)

    def decode_distributions(self, distributions):
        means = torch.stack([distributions[k] @ self.points.to(distributions[k]) for k in LOBES], dim=-1)
        return image_matrix_to_euler(project_to_rotation(F.normalize(means, dim=1)))

    def flip_outputs(self, outputs):
        parts = self.split(outputs)
        mirrored = [mirror_logits(parts[k], self.points, _FLIP_SIGNS[k]) for k in LOBES]
        return torch.cat([parts["bandwidth"], *mirrored], dim=1)

    def outputs_for(self, angles_deg):
        raw = torch.full_like(angles_deg, REFERENCE_BANDWIDTH)
        if self.hparams.positive_bandwidth:
            raw = torch.log(torch.expm1(raw - _MIN_BANDWIDTH))  # inverse of softplus(raw) + 1e-3
        logits = torch.cat([t.clamp_min(1e-12).log() for t in self.reference_targets(angles_deg).values()], dim=1)
        return torch.cat([raw, raw, logits], dim=1)
