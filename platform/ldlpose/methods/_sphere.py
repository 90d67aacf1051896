"""Distributions over points on the unit sphere (ASG-LDL): the point lattice and mirroring.

A Fibonacci lattice has no mirror symmetry, so the mirror image of a distribution over it is not a
distribution over it. :func:`mirror_logits` moves each point's logit to the point nearest its
mirror image and then tilts the logits by a linear function of the points, exp(eta . p), solved by
Newton's method so that the expectation points exactly along the mirrored expectation (what
decoding reads). Where a distribution sits on one or two points the lattice cannot represent the
mirrored direction and the result stays within the point spacing of it.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from ldlpose._lazy import LazyModule

if TYPE_CHECKING:
    import torch
else:  # torch loads on first use (ldlpose._lazy)
    torch = LazyModule("torch")


_GOLDEN = (1.0 + math.sqrt(5.0)) / 2.0
_STEP_SCALES = (*(0.5**k for k in range(10)), 0.0)  # backtracking; 0 keeps the current tilt


def fibonacci_sphere(num_points: int) -> torch.Tensor:
    """(P, 3) Fibonacci-lattice unit vectors as ASG-LDL's ``PointsGenerator`` builds them."""
    i = torch.arange(num_points, dtype=torch.float64)
    azimuth = 2.0 * math.pi * i / _GOLDEN
    polar = torch.acos(1.0 - 2.0 * (i + 0.5) / num_points)
    points = torch.stack([azimuth.cos() * polar.sin(), azimuth.sin() * polar.sin(), polar.cos()], dim=-1)
    return points.float()


def nearest_mirror(points: torch.Tensor, signs: tuple[float, float, float]) -> torch.Tensor:
    """(P,) index of the point nearest to each point's mirror image ``diag(signs) @ p``."""
    mirrored = points * points.new_tensor(signs)
    return (mirrored @ points.T).argmax(dim=1)


def mirror_logits(logits: torch.Tensor, points: torch.Tensor, signs: tuple[float, float, float],
                  steps: int = 12) -> torch.Tensor:
    """Logits (N, P) over ``points`` for the mirror image ``diag(signs) p`` of each distribution."""
    work = logits.double()
    pts = points.to(work)
    goal = torch.nn.functional.normalize((torch.softmax(work, -1) @ pts) * pts.new_tensor(signs), dim=-1)
    moved = work[:, nearest_mirror(points, signs).to(logits.device)]
    mean = torch.softmax(moved, -1) @ pts
    target = (mean * goal).sum(-1, keepdim=True).clamp_min(1e-6) * goal
    eta = torch.zeros_like(goal)
    scales = pts.new_tensor(_STEP_SCALES)
    for _ in range(steps):
        prob = torch.softmax(moved + eta @ pts.T, -1)
        mean = prob @ pts
        cov = torch.einsum("np,pi,pj->nij", prob, pts, pts) - mean[:, :, None] * mean[:, None, :]
        step = torch.linalg.solve(cov + 1e-9 * torch.eye(3, dtype=work.dtype, device=work.device),
                                  (mean - target)[..., None])[..., 0]
        candidates = eta[:, None, :] - scales[None, :, None] * step[:, None, :]  # (N, S, 3)
        cand_mean = torch.softmax(moved[:, None, :] + candidates @ pts.T, -1) @ pts
        best = (cand_mean - target[:, None, :]).norm(dim=-1).argmin(dim=1)
        eta = candidates[torch.arange(len(best), device=best.device), best]
    return (moved + eta @ pts.T).to(logits.dtype)
