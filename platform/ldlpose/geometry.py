"""The platform's single head-pose convention.

Every angle inside ldlpose is an ``(N, 3)`` tensor of **yaw, pitch, roll in degrees**, as 300W-LP
defines them (its ``Pose_Para`` stores [pitch, yaw, roll] in radians; readers convert at the edge).

Two rotation-matrix frames are used (docs/methods.md#euler-conventions):

* the *head* frame ``R = Rz(roll) @ Ry(yaw) @ Rx(pitch)`` (right-handed active rotations, the
  6DRepNet convention), built by :func:`euler_to_matrix` and inverted by :func:`matrix_to_euler`;
* the *image* frame ``R_img = Rx(pitch) @ Ry(-yaw) @ Rz(roll) = H @ R.T @ H`` with
  ``H = diag(-1, 1, -1)``, whose columns are the left, down and front unit vectors used by ASG-LDL
  and by MAEV. Its first two rows are the 2-D axis end points for drawing (image x right, y down).

What the signs mean, checked by the tests on rendered images: positive yaw turns the face toward the
image's left, positive pitch tilts it up, positive roll tilts it clockwise as seen in the image.

All functions are batched, device-agnostic and differentiable (where a loss uses them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ldlpose._lazy import LazyModule

if TYPE_CHECKING:
    import torch
else:  # torch loads on first use (ldlpose._lazy)
    torch = LazyModule("torch")


__all__ = [
    "HOPENET_BINS",
    "BinScheme",
    "axis_endpoints_2d",
    "euler_to_matrix",
    "flip_angles",
    "flip_matrices",
    "geodesic_deg",
    "image_axes",
    "image_matrix",
    "image_matrix_to_euler",
    "matrix_to_euler",
    "project_to_rotation",
    "sixd_to_matrix",
]

YAW, PITCH, ROLL = 0, 1, 2
_H = (-1.0, 1.0, -1.0)  # R_img = H R^T H (docs/methods.md#euler-conventions)
_G = (-1.0, 1.0, 1.0)  # horizontal flip: R -> G R G (docs/methods.md#flip)


def _check_angles(angles_deg: torch.Tensor) -> None:
    if angles_deg.ndim != 2 or angles_deg.shape[-1] != 3:
        raise ValueError(
            f"angles must have shape (N, 3) [yaw, pitch, roll in degrees], got {tuple(angles_deg.shape)}"
        )


def _check_matrices(matrices: torch.Tensor) -> None:
    if matrices.ndim != 3 or matrices.shape[-2:] != (3, 3):
        raise ValueError(f"rotation matrices must have shape (N, 3, 3), got {tuple(matrices.shape)}")


def _rot_x(a: torch.Tensor) -> torch.Tensor:
    c, s, one, zero = a.cos(), a.sin(), torch.ones_like(a), torch.zeros_like(a)
    return torch.stack([one, zero, zero, zero, c, -s, zero, s, c], -1).reshape(-1, 3, 3)


def _rot_y(a: torch.Tensor) -> torch.Tensor:
    c, s, one, zero = a.cos(), a.sin(), torch.ones_like(a), torch.zeros_like(a)
    return torch.stack([c, zero, s, zero, one, zero, -s, zero, c], -1).reshape(-1, 3, 3)


def _rot_z(a: torch.Tensor) -> torch.Tensor:
    c, s, one, zero = a.cos(), a.sin(), torch.ones_like(a), torch.zeros_like(a)
    return torch.stack([c, -s, zero, s, c, zero, zero, zero, one], -1).reshape(-1, 3, 3)


def euler_to_matrix(angles_deg: torch.Tensor) -> torch.Tensor:
    """Head-frame rotation ``R = Rz(roll) Ry(yaw) Rx(pitch)`` of shape (N, 3, 3)."""
    _check_angles(angles_deg)
    rad = torch.deg2rad(angles_deg)
    return _rot_z(rad[:, ROLL]) @ _rot_y(rad[:, YAW]) @ _rot_x(rad[:, PITCH])


def matrix_to_euler(matrices: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`euler_to_matrix`, returning (N, 3) yaw/pitch/roll in degrees.

    Unique for |yaw| < 90 (yaw is the middle rotation). At the gimbal lock (|yaw| = 90) roll is
    set to 0 and pitch absorbs the remaining in-plane rotation.
    """
    _check_matrices(matrices)
    r = matrices
    cos_yaw = torch.sqrt(r[:, 0, 0] ** 2 + r[:, 1, 0] ** 2)
    yaw = torch.atan2(-r[:, 2, 0], cos_yaw)
    pitch = torch.atan2(r[:, 2, 1], r[:, 2, 2])
    roll = torch.atan2(r[:, 1, 0], r[:, 0, 0])
    # Branch-free (no data-dependent Python control flow) so that models using it can be exported.
    singular = cos_yaw < 1e-6
    pitch = torch.where(singular, torch.atan2(-r[:, 1, 2], r[:, 1, 1]), pitch)
    roll = torch.where(singular, torch.zeros_like(roll), roll)
    return torch.rad2deg(torch.stack([yaw, pitch, roll], dim=-1))


def _conjugate_diag(matrices: torch.Tensor, diag: tuple[float, float, float]) -> torch.Tensor:
    d = torch.tensor(diag, dtype=matrices.dtype, device=matrices.device)
    return matrices * d[:, None] * d[None, :]


def image_matrix(angles_deg: torch.Tensor) -> torch.Tensor:
    """Image-frame rotation ``R_img = Rx(pitch) Ry(-yaw) Rz(roll)`` (N, 3, 3)."""
    _check_angles(angles_deg)
    rad = torch.deg2rad(angles_deg)
    return _rot_x(rad[:, PITCH]) @ _rot_y(-rad[:, YAW]) @ _rot_z(rad[:, ROLL])


def image_matrix_to_euler(matrices_img: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`image_matrix`: (N, 3) yaw/pitch/roll in degrees."""
    _check_matrices(matrices_img)
    return matrix_to_euler(_conjugate_diag(matrices_img, _H).transpose(-1, -2))


def image_axes(angles_deg: torch.Tensor) -> dict[str, torch.Tensor]:
    """The left, down and front unit vectors (columns of ``R_img``), each (N, 3)."""
    r = image_matrix(angles_deg)
    return {"left": r[:, :, 0], "down": r[:, :, 1], "front": r[:, :, 2]}


def axis_endpoints_2d(
    angles_deg: torch.Tensor, center_xy: torch.Tensor | None = None, size: float = 1.0
) -> torch.Tensor:
    """2-D end points (N, 3, 2) of the left, down and front axes in image pixels (x right, y down).

    ``center_xy`` (N, 2) is where the axes start (default the origin); ``size`` their length.
    """
    r = image_matrix(angles_deg)
    ends = r[:, :2, :].transpose(1, 2) * size  # (N, axis, xy)
    if center_xy is not None:
        ends = ends + center_xy[:, None, :].to(ends)
    return ends


def flip_angles(angles_deg: torch.Tensor) -> torch.Tensor:
    """Angles of the horizontally mirrored image: yaw and roll negate, pitch stays."""
    _check_angles(angles_deg)
    sign = torch.tensor((-1.0, 1.0, -1.0), dtype=angles_deg.dtype, device=angles_deg.device)
    return angles_deg * sign


def flip_matrices(matrices: torch.Tensor) -> torch.Tensor:
    """Rotation of the mirrored image, ``G R G`` with ``G = diag(-1, 1, 1)``; valid for both frames."""
    _check_matrices(matrices)
    return _conjugate_diag(matrices, _G)


def sixd_to_matrix(sixd: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Gram-Schmidt of a (N, 6) output into rotations whose columns are [x, y, z] (6DRepNet)."""
    if sixd.ndim != 2 or sixd.shape[-1] != 6:
        raise ValueError(f"6D representation must have shape (N, 6), got {tuple(sixd.shape)}")
    x = torch.nn.functional.normalize(sixd[:, :3], dim=-1, eps=eps)
    z = torch.nn.functional.normalize(torch.linalg.cross(x, sixd[:, 3:]), dim=-1, eps=eps)
    y = torch.linalg.cross(z, x)
    return torch.stack([x, y, z], dim=-1)


def project_to_rotation(matrices: torch.Tensor) -> torch.Tensor:
    """Nearest rotation to each 3x3 matrix (Frobenius norm), via SVD with the reflection corrected.

    ``U diag(1, 1, det(U V^T)) V^T``: a plain ``U V^T`` can have determinant -1 (docs/methods.md#pitfalls, 12).
    """
    _check_matrices(matrices)
    u, _, vh = torch.linalg.svd(matrices)
    det = torch.linalg.det(u @ vh)
    fix = torch.ones_like(u[:, 0, :])
    fix = torch.cat([fix[:, :2], det[:, None]], dim=-1)
    return (u * fix[:, None, :]) @ vh


def geodesic_deg(r1: torch.Tensor, r2: torch.Tensor, eps: float = 0.0) -> torch.Tensor:
    """Angle (N,) in degrees of the rotation taking ``r2`` to ``r1``: arccos((tr(R1 R2^T) - 1) / 2).

    ``eps`` keeps the cosine away from +/-1 where arccos has an infinite slope (use > 0 in losses).
    """
    _check_matrices(r1)
    _check_matrices(r2)
    cos = ((r1 * r2).sum(dim=(-1, -2)) - 1.0) / 2.0
    return torch.rad2deg(torch.acos(cos.clamp(-1.0 + eps, 1.0 - eps)))


@dataclass(frozen=True)
class BinScheme:
    """Uniform angle bins of ``width`` degrees covering ``[low, high)``.

    Bin ``i`` covers ``[low + i * width, low + (i + 1) * width)``. Angles outside the range are
    **clamped** to the first or last bin by :meth:`index` (``clamp=True``), so an index is never out
    of range: exactly ``high`` (e.g. +99) falls in the last bin, as does anything above it. With
    ``clamp=False`` an out-of-range angle raises ``ValueError`` instead.
    """

    low: float
    high: float
    width: float

    def __post_init__(self) -> None:
        count = (self.high - self.low) / self.width
        if self.width <= 0 or count < 1 or abs(count - round(count)) > 1e-9:
            raise ValueError(
                f"bins [{self.low}, {self.high}) of width {self.width} must tile the range exactly"
            )

    @property
    def num_bins(self) -> int:
        return round((self.high - self.low) / self.width)

    def left_edges(self, device: torch.device | str | None = None) -> torch.Tensor:
        return self.low + self.width * torch.arange(self.num_bins, dtype=torch.float32, device=device)

    def centers(self, device: torch.device | str | None = None) -> torch.Tensor:
        return self.left_edges(device) + self.width / 2

    def index(self, angles_deg: torch.Tensor, clamp: bool = True) -> torch.Tensor:
        """Bin index (long) of each angle; see the class docstring for out-of-range angles."""
        idx = torch.floor((angles_deg - self.low) / self.width).long()
        if clamp:
            return idx.clamp(0, self.num_bins - 1)
        outside = (angles_deg < self.low) | (angles_deg >= self.high) | ~torch.isfinite(angles_deg)
        if bool(outside.any()):
            bad = angles_deg[outside].flatten()[:5].tolist()
            raise ValueError(
                f"angles {bad} lie outside the bins' range [{self.low}, {self.high}); "
                "filter them or use clamp=True"
            )
        return idx

    def continuous_index(self, angles_deg: torch.Tensor) -> torch.Tensor:
        """The angle in bin units, aligned so that bin ``i``'s centre maps to ``i`` (sub-bin accurate)."""
        return (angles_deg - self.low) / self.width - 0.5

    def expectation(self, probs: torch.Tensor, decode: str = "center") -> torch.Tensor:
        """Expected angle in degrees of a distribution over the bins (last dim).

        ``decode="center"`` maps bin ``i`` to its centre; ``"edge"`` to its left edge, as HopeNet's
        ``3 * E[i] - 99`` does (1.5 degrees low for 3-degree bins; docs/methods.md#bins).
        """
        if decode not in ("center", "edge"):
            raise ValueError(f"decode must be 'center' or 'edge', got {decode!r}")
        values = self.centers(probs.device) if decode == "center" else self.left_edges(probs.device)
        return (probs * values.to(probs.dtype)).sum(dim=-1)


HOPENET_BINS = BinScheme(low=-99.0, high=99.0, width=3.0)
"""The 66 bins of 3 degrees over [-99, 99) used by HopeNet, GLDL, DADL and WHENet's pitch/roll."""
