"""Head-pose error metrics in the platform convention (spec ``methods.md`` section 4.8).

* ``mae_yaw``, ``mae_pitch``, ``mae_roll``: mean absolute Euler error in degrees, no wrapping (as
  HopeNet, FSA-Net and ASG-LDL report it); ``mae`` is the mean of the three, the papers' headline.
* ``maev``: mean angle in degrees between predicted and true left/down/front vectors (columns of the
  image-frame matrix, :func:`ldlpose.geometry.image_matrix`), the metric of TriNet and ASG-LDL.
* ``geodesic``: mean rotation angle in degrees between predicted and true poses; it does not depend
  on which matrix convention is used.

``maev`` is computed from the **decoded angles** for every method, so that methods compare. ASG-LDL
reports MAEV from its raw, non-orthogonalised expectation vectors instead (ASG ``tester.py``);
:func:`maev_from_vectors` computes that one, which ``ldlpose evaluate`` prints as ``maev_asg``
beside the uniform ``maev`` when the model's raw outputs are at hand (a checkpoint).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

__all__ = ["COST_METRICS", "METRIC_NAMES", "evaluate", "maev_from_vectors", "metric_key", "per_sample_errors"]

# torch is imported by the functions that compute, so that naming a metric (configs, tables, the CLI)
# stays free of it.
METRIC_NAMES = ("mae_yaw", "mae_pitch", "mae_roll", "mae", "maev", "geodesic")
# What ldlpose.inference.profile measures of a model, named here with the error metrics so that a
# search space's objectives are checked without importing torch; the search accepts them as objectives
# after the first.
COST_METRICS = ("latency_ms", "latency_p90_ms", "latency_batch_ms", "latency_batch_p90_ms", "params_m", "macs_m")


def metric_key(dataset: str, metric: str) -> str:
    """Reported metric name of ``metric`` on a set: ``val_mae``, ``synth_mae``, ``biwi_p2_mae``."""
    return f"{dataset.replace('-', '_')}_{metric}"


def _as_angles(x, name: str) -> torch.Tensor:
    import torch

    t = torch.as_tensor(x, dtype=torch.float64)
    if t.ndim != 2 or t.shape[-1] != 3:
        raise ValueError(f"{name} must have shape (N, 3) [yaw, pitch, roll in degrees], got {tuple(t.shape)}")
    return t


def _vector_angle_deg(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    import torch

    cos = (torch.nn.functional.normalize(a, dim=-1) * torch.nn.functional.normalize(b, dim=-1)).sum(-1)
    return torch.rad2deg(torch.acos(cos.clamp(-1.0, 1.0)))


def per_sample_errors(pred_deg, true_deg) -> dict[str, torch.Tensor]:
    """Per-sample errors for plots: ``abs`` (N, 3) yaw/pitch/roll, ``vector`` (N, 3) left/down/front
    and ``geodesic`` (N,), all in degrees."""
    import torch

    from ldlpose import geometry

    pred, true = _as_angles(pred_deg, "pred_deg"), _as_angles(true_deg, "true_deg")
    if pred.shape != true.shape:
        raise ValueError(f"pred_deg {tuple(pred.shape)} and true_deg {tuple(true.shape)} differ in shape")
    r_pred, r_true = geometry.image_matrix(pred), geometry.image_matrix(true)
    vector = torch.stack([_vector_angle_deg(r_pred[:, :, k], r_true[:, :, k]) for k in range(3)], dim=-1)
    return {
        "abs": (pred - true).abs(),
        "vector": vector,
        "geodesic": geometry.geodesic_deg(geometry.euler_to_matrix(pred), geometry.euler_to_matrix(true)),
    }


def evaluate(pred_deg, true_deg) -> dict[str, float]:
    """All platform metrics of predictions against ground truth, both (N, 3) yaw/pitch/roll degrees."""
    errors = per_sample_errors(pred_deg, true_deg)
    if errors["abs"].shape[0] == 0:
        raise ValueError("cannot evaluate on an empty set of samples")
    per_angle = errors["abs"].mean(dim=0)
    return {
        "mae_yaw": float(per_angle[0]),
        "mae_pitch": float(per_angle[1]),
        "mae_roll": float(per_angle[2]),
        "mae": float(per_angle.mean()),
        "maev": float(errors["vector"].mean()),
        "geodesic": float(errors["geodesic"].mean()),
    }


def maev_from_vectors(vectors, true_deg) -> float:
    """MAEV in degrees of predicted (N, 3, 3) unit vectors (rows: left, down, front, image frame)
    against the columns of the true image-frame matrix, as ASG-LDL's tester computes it."""
    import torch

    from ldlpose import geometry

    v = torch.as_tensor(vectors, dtype=torch.float64)
    true = _as_angles(true_deg, "true_deg")
    if v.shape != (true.shape[0], 3, 3):
        raise ValueError(f"vectors must have shape (N, 3, 3) with N = {true.shape[0]}, got {tuple(v.shape)}")
    r_true = geometry.image_matrix(true)
    return float(torch.stack([_vector_angle_deg(v[:, k], r_true[:, :, k]) for k in range(3)], dim=-1).mean())
