"""The angle convention, proven against scipy and against what the signs must mean on an image."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from ldlpose import geometry as g

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def angles(*rows):
    return torch.tensor(rows, dtype=torch.float64)


def random_angles(n, seed=0, yaw_limit=89.0):
    gen = torch.Generator().manual_seed(seed)
    a = torch.rand(n, 3, generator=gen, dtype=torch.float64) * 2 - 1
    return a * torch.tensor([yaw_limit, 179.0, 179.0], dtype=torch.float64)


# --- euler <-> matrix -------------------------------------------------------------------------

def test_single_axis_matrices_follow_rz_ry_rx():
    # yaw is a rotation about y, pitch about x, roll about z: swapping any two breaks these.
    ry = g.euler_to_matrix(angles([90.0, 0, 0]))[0]
    assert torch.allclose(ry, torch.tensor([[0, 0, 1], [0, 1, 0], [-1, 0, 0]], dtype=ry.dtype), atol=1e-12)
    rx = g.euler_to_matrix(angles([0, 90.0, 0]))[0]
    assert torch.allclose(rx, torch.tensor([[1, 0, 0], [0, 0, -1], [0, 1, 0]], dtype=rx.dtype), atol=1e-12)
    rz = g.euler_to_matrix(angles([0, 0, 90.0]))[0]
    assert torch.allclose(rz, torch.tensor([[0, -1, 0], [1, 0, 0], [0, 0, 1]], dtype=rz.dtype), atol=1e-12)


def test_composition_order_is_roll_yaw_pitch():
    a = angles([30.0, 20.0, 10.0])
    yaw_only, pitch_only, roll_only = angles([30.0, 0, 0]), angles([0, 20.0, 0]), angles([0, 0, 10.0])
    expected = g.euler_to_matrix(roll_only) @ g.euler_to_matrix(yaw_only) @ g.euler_to_matrix(pitch_only)
    assert torch.allclose(g.euler_to_matrix(a), expected, atol=1e-12)


def test_agrees_with_scipy():
    a = random_angles(500, seed=1, yaw_limit=179.0)
    ours = g.euler_to_matrix(a).numpy()
    # Intrinsic Z-Y'-X'' with (roll, yaw, pitch) is Rz(roll) Ry(yaw) Rx(pitch).
    ref = Rotation.from_euler("ZYX", a[:, [2, 0, 1]].numpy(), degrees=True).as_matrix()
    np.testing.assert_allclose(ours, ref, atol=1e-12)


def test_round_trip_where_unique():
    a = random_angles(2000, seed=2)
    back = g.matrix_to_euler(g.euler_to_matrix(a))
    assert torch.allclose(back, a, atol=1e-9)


def test_inverse_agrees_with_scipy():
    rots = Rotation.random(300, random_state=3)
    ours = g.matrix_to_euler(torch.from_numpy(rots.as_matrix()))
    roll, yaw, pitch = rots.as_euler("ZYX", degrees=True).T
    np.testing.assert_allclose(ours.numpy(), np.stack([yaw, pitch, roll], -1), atol=1e-8)


def test_gimbal_lock_still_reconstructs_the_matrix():
    a = angles([90.0, 30.0, 20.0], [-90.0, -40.0, 10.0])
    r = g.euler_to_matrix(a)
    back = g.matrix_to_euler(r)
    assert torch.allclose(back[:, 0], a[:, 0])
    assert torch.allclose(g.euler_to_matrix(back), r, atol=1e-9)


@settings(max_examples=200, deadline=None)
@given(
    st.floats(-89.9, 89.9), st.floats(-179.9, 179.9), st.floats(-179.9, 179.9),
)
def test_round_trip_property(yaw, pitch, roll):
    a = angles([yaw, pitch, roll])
    r = g.euler_to_matrix(a)
    assert torch.allclose(r @ r.transpose(1, 2), torch.eye(3, dtype=r.dtype), atol=1e-12)
    assert math.isclose(float(torch.linalg.det(r)), 1.0, abs_tol=1e-12)
    assert torch.allclose(g.matrix_to_euler(r), a, atol=1e-7)
    assert torch.allclose(g.image_matrix_to_euler(g.image_matrix(a)), a, atol=1e-7)
    assert torch.allclose(g.flip_angles(g.flip_angles(a)), a)


# --- image frame and drawing ------------------------------------------------------------------

def test_image_matrix_is_h_rt_h():
    a = random_angles(200, seed=4)
    h = torch.diag(torch.tensor([-1.0, 1.0, -1.0], dtype=torch.float64))
    assert torch.allclose(g.image_matrix(a), h @ g.euler_to_matrix(a).transpose(1, 2) @ h, atol=1e-12)


def test_identity_pose_axes():
    axes = g.image_axes(angles([0.0, 0.0, 0.0]))
    assert torch.allclose(axes["left"], angles([1.0, 0, 0]))
    assert torch.allclose(axes["down"], angles([0, 1.0, 0]))
    assert torch.allclose(axes["front"], angles([0, 0, 1.0]))


def test_drawing_directions_match_the_convention():
    ends = g.axis_endpoints_2d(angles([30.0, 0, 0], [0, 30.0, 0], [0, 0, 30.0]), size=1.0)
    left, down, front = 0, 1, 2
    x, y = 0, 1
    # Positive yaw: the face (front axis) turns toward the image's left (x < 0).
    assert ends[0, front, x] < -0.4 and abs(float(ends[0, front, y])) < 1e-12
    # Positive pitch: the face tilts up (front axis y < 0, image y points down).
    assert ends[1, front, y] < -0.4 and abs(float(ends[1, front, x])) < 1e-12
    # Positive roll: clockwise on screen; the left axis (pointing right at rest) dips down (y > 0),
    # and the down axis (pointing down at rest) swings toward the image's left (x < 0).
    assert ends[2, left, y] > 0.4 and ends[2, down, x] < -0.4


def test_axis_endpoints_offset_and_scale():
    a = angles([10.0, 20.0, 30.0])
    ends = g.axis_endpoints_2d(a, center_xy=torch.tensor([[5.0, 7.0]]), size=50.0)
    r = g.image_matrix(a)[0]
    assert torch.allclose(ends[0, 2], torch.tensor([5.0, 7.0], dtype=r.dtype) + 50 * r[:2, 2])


# --- flips ------------------------------------------------------------------------------------

def test_flip_angles_negates_yaw_and_roll_only():
    assert torch.equal(g.flip_angles(angles([10.0, 20.0, 30.0])), angles([-10.0, 20.0, -30.0]))


@pytest.mark.parametrize("frame", [g.euler_to_matrix, g.image_matrix])
def test_flip_matrix_matches_flipped_angles(frame):
    a = random_angles(300, seed=5)
    assert torch.allclose(g.flip_matrices(frame(a)), frame(g.flip_angles(a)), atol=1e-12)


def test_flip_mirrors_the_drawn_axes():
    a = random_angles(50, seed=6)
    ends, flipped = g.axis_endpoints_2d(a), g.axis_endpoints_2d(g.flip_angles(a))
    # Mirroring the image negates x of every axis; the "left" axis also flips its direction.
    mirrored = ends * torch.tensor([-1.0, 1.0], dtype=ends.dtype)
    assert torch.allclose(flipped[:, 1:], mirrored[:, 1:], atol=1e-12)
    assert torch.allclose(flipped[:, 0], -mirrored[:, 0], atol=1e-12)


# --- 6D, SVD projection, geodesic -------------------------------------------------------------

def test_sixd_recovers_rotation_and_is_orthonormal():
    r = g.euler_to_matrix(random_angles(100, seed=7))
    sixd = torch.cat([r[:, :, 0], r[:, :, 1] * 3.0 + r[:, :, 0]], dim=-1)  # scaled, skewed 2nd column
    assert torch.allclose(g.sixd_to_matrix(sixd), r, atol=1e-10)
    rand = g.sixd_to_matrix(torch.randn(100, 6, dtype=torch.float64))
    assert torch.allclose(rand @ rand.transpose(1, 2), torch.eye(3, dtype=rand.dtype).expand(100, 3, 3), atol=1e-10)
    assert torch.allclose(torch.linalg.det(rand), torch.ones(100, dtype=rand.dtype), atol=1e-10)


def test_projection_corrects_reflections():
    r = g.euler_to_matrix(random_angles(100, seed=8))
    assert torch.allclose(g.project_to_rotation(r), r, atol=1e-10)
    noisy = r + 0.05 * torch.randn(100, 3, 3, dtype=r.dtype, generator=torch.Generator().manual_seed(0))
    proj = g.project_to_rotation(noisy)
    assert torch.allclose(torch.linalg.det(proj), torch.ones(100, dtype=r.dtype), atol=1e-10)
    assert float(g.geodesic_deg(proj, r).max()) < 10.0
    reflected = r * torch.tensor([1.0, 1.0, -1.0], dtype=r.dtype)  # det = -1: plain U V^T would keep it
    assert torch.allclose(torch.linalg.det(g.project_to_rotation(reflected)), torch.ones(100, dtype=r.dtype),
                          atol=1e-10)


def test_geodesic_known_values_and_invariance():
    a, b = angles([30.0, 0, 0]), angles([0, 0, 0])
    assert math.isclose(float(g.geodesic_deg(g.euler_to_matrix(a), g.euler_to_matrix(b))), 30.0, abs_tol=1e-9)
    p, q = random_angles(200, seed=9), random_angles(200, seed=10)
    rp, rq = g.euler_to_matrix(p), g.euler_to_matrix(q)
    d = g.geodesic_deg(rp, rq)
    other = g.euler_to_matrix(random_angles(200, seed=11))
    assert torch.allclose(g.geodesic_deg(other @ rp, other @ rq), d, atol=1e-7)
    assert torch.allclose(g.geodesic_deg(rp @ other, rq @ other), d, atol=1e-7)
    assert torch.allclose(g.geodesic_deg(g.image_matrix(p), g.image_matrix(q)), d, atol=1e-7)
    assert torch.allclose(g.geodesic_deg(rq, rp), d, atol=1e-7)


# --- bins -------------------------------------------------------------------------------------

def test_hopenet_bins_layout():
    bins = g.HOPENET_BINS
    assert bins.num_bins == 66
    assert bins.left_edges()[0] == -99 and bins.left_edges()[-1] == 96
    assert bins.centers()[0] == -97.5 and bins.centers()[-1] == 97.5


def test_bin_index_at_edges_and_beyond():
    bins = g.HOPENET_BINS
    a = torch.tensor([-99.0, -96.0, -96.0001, 0.0, 98.999, 99.0, 150.0, -120.0])
    assert bins.index(a).tolist() == [0, 1, 0, 33, 65, 65, 65, 0]
    with pytest.raises(ValueError, match="outside"):
        bins.index(torch.tensor([99.0]), clamp=False)
    with pytest.raises(ValueError, match="outside"):
        bins.index(torch.tensor([-99.5]), clamp=False)
    assert bins.index(torch.tensor([-99.0, 98.9]), clamp=False).tolist() == [0, 65]


def test_continuous_index_and_expectation():
    bins = g.HOPENET_BINS
    assert torch.allclose(bins.continuous_index(bins.centers()), torch.arange(66, dtype=torch.float32))
    onehot = torch.nn.functional.one_hot(torch.tensor([0, 33, 65]), 66).float()
    assert torch.allclose(bins.expectation(onehot), torch.tensor([-97.5, 1.5, 97.5]))
    assert torch.allclose(bins.expectation(onehot, decode="edge"), torch.tensor([-99.0, 0.0, 96.0]))


def test_bin_scheme_rejects_a_range_it_cannot_tile():
    with pytest.raises(ValueError, match="tile"):
        g.BinScheme(low=-99, high=99, width=4)


# --- shapes, devices, gradients ---------------------------------------------------------------

def test_shape_errors_are_explained():
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        g.euler_to_matrix(torch.zeros(3))
    with pytest.raises(ValueError, match=r"\(N, 3, 3\)"):
        g.matrix_to_euler(torch.zeros(3, 3))


@pytest.mark.parametrize("device", DEVICES)
def test_runs_on_device(device):
    a = random_angles(10, seed=12).float().to(device)
    r = g.euler_to_matrix(a)
    assert r.device.type == device
    assert torch.allclose(g.matrix_to_euler(r), a, atol=1e-3)
    assert g.project_to_rotation(r).device.type == device


def test_differentiable():
    a = random_angles(4, seed=13).requires_grad_()
    assert torch.autograd.gradcheck(g.euler_to_matrix, (a,))
    sixd = torch.randn(4, 6, dtype=torch.float64, requires_grad=True)
    target = g.euler_to_matrix(random_angles(4, seed=14))
    assert torch.autograd.gradcheck(lambda s: g.geodesic_deg(g.sixd_to_matrix(s), target, eps=1e-7), (sixd,))
