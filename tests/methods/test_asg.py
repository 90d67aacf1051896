"""ASG-LDL sphere targets (docs/methods.md#asg-ldl), checked against the formulas written out with numpy."""

import math

import numpy as np
import pytest
import torch

import ldlpose.methods as methods
from ldlpose.methods._sphere import fibonacci_sphere

GOLDEN = (1 + math.sqrt(5)) / 2


def image_axes_numpy(yaw, pitch, roll):
    """Columns (left, down, front) of R_img = Rx(pitch) Ry(-yaw) Rz(roll), written out independently."""
    p, y, r = np.radians([pitch, -yaw, roll])
    rx = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    m = rx @ ry @ rz
    return m[:, 0], m[:, 1], m[:, 2]


def targets_for(method, angles, lam, mu):
    angles = torch.tensor([angles], dtype=torch.float64)
    lambdas = torch.tensor([lam], dtype=torch.float64)
    mus = torch.tensor([mu], dtype=torch.float64)
    return {k: v[0].numpy() for k, v in method.targets(angles, lambdas=lambdas, mus=mus).items()}


def test_fibonacci_points_follow_the_reference_formula():
    points = fibonacci_sphere(600).double().numpy()
    for i in (0, 1, 299, 599):
        az, pol = 2 * math.pi * i / GOLDEN, math.acos(1 - 2 * (i + 0.5) / 600)
        expected = [math.cos(az) * math.sin(pol), math.sin(az) * math.sin(pol), math.cos(pol)]
        np.testing.assert_allclose(points[i], expected, atol=1e-6)
    cos = points @ points.T
    np.fill_diagonal(cos, -1)
    spacing = np.degrees(np.arccos(np.clip(cos.max(axis=1), -1, 1))).mean()
    assert spacing == pytest.approx(8.0, abs=0.1)  # docs/methods.md#asg-ldl


def test_targets_follow_the_anisotropic_spherical_gaussian():
    method = methods.create("asg", target="normalized")
    yaw, pitch, roll = 25.0, -40.0, 70.0
    lam, mu = [3.0, 20.0, 7.0], [15.0, 2.0, 40.0]
    targets = targets_for(method, [yaw, pitch, roll], lam, mu)
    left, down, front = image_axes_numpy(yaw, pitch, roll)
    points = method.points.double().numpy()
    lobes = {"left": (left, down, front), "down": (down, front, left), "front": (front, left, down)}
    for k, (key, (v, x, y)) in enumerate(lobes.items()):
        a = np.maximum(0, points @ v) * np.exp(-lam[k] * (points @ x) ** 2 - mu[k] * (points @ y) ** 2)
        np.testing.assert_allclose(targets[key], a / a.sum(), atol=1e-9)
    literal = targets_for(methods.create("asg", target="softmax"), [yaw, pitch, roll], lam, mu)
    a = np.maximum(0, points @ left) * np.exp(-lam[0] * (points @ down) ** 2 - mu[0] * (points @ front) ** 2)
    np.testing.assert_allclose(literal["left"], np.exp(a) / np.exp(a).sum(), atol=1e-9)


@pytest.mark.parametrize("target", ["normalized", "softmax", "tempered"])
def test_each_target_peaks_at_its_ground_truth_axis(target):
    method = methods.create("asg", target=target)
    points = method.points.double().numpy()
    gen = np.random.default_rng(0)
    for angles in gen.uniform([-80, -150, -150], [80, 150, 150], size=(5, 3)):
        targets = targets_for(method, list(angles), [10.0] * 3, [10.0] * 3)
        for key, axis in zip(("left", "down", "front"), image_axes_numpy(*angles)):
            assert targets[key].argmax() == (points @ axis).argmax(), key  # the point nearest the axis


def test_softmax_target_is_nearly_uniform_as_documented():
    points = methods.create("asg").points.double().numpy()
    identity = [0.0, 0.0, 0.0]  # docs/methods.md#asg-ldl's table is for the left vector at R = I
    for bandwidth, t_max, t_min, norm in [(1.0, 0.00372, 0.00137, 0.133), (10.0, 0.00425, 0.00161, 0.030),
                                          (100.0, 0.00348, 0.00166, 0.0034)]:
        t = targets_for(methods.create("asg", target="softmax"), identity, [bandwidth] * 3, [bandwidth] * 3)["left"]
        assert (t.max(), t.min()) == pytest.approx((t_max, t_min), abs=5e-6)
        assert np.linalg.norm(t @ points) == pytest.approx(norm, rel=0.02)
    for bandwidth, t_max, norm in [(1.0, 0.010, 0.73), (10.0, 0.065, 0.95), (100.0, 0.487, 0.995)]:
        t = targets_for(methods.create("asg", target="normalized"), identity, [bandwidth] * 3, [bandwidth] * 3)["left"]
        assert t.max() == pytest.approx(t_max, abs=6e-4)
        assert np.linalg.norm(t @ points) == pytest.approx(norm, abs=5e-3)


def test_kl_gradient_reaches_the_predicted_bandwidths():
    angles = torch.tensor([[10.0, 20.0, 30.0]])
    for soft_weight, reaches in [(5.0, True), (0.0, False)]:
        method = methods.create("asg", soft_weight=soft_weight)
        outputs = (method.outputs_for(angles) + 0.1 * torch.randn(1, method.num_outputs)).requires_grad_()
        method.loss(outputs, {"angles_deg": angles})[0].backward()
        assert (outputs.grad[:, :6].abs().sum() > 0) == reaches


def test_sphere_expectation_is_unbiased_where_bins_are_not():
    bias = methods.expectation_bias("asg", [[0.0, 96.0, 0.0], [60.0, 0.0, 90.0]])
    assert bias.abs().max() < 0.3  # GLDL's sigma-4 bins: -7.77 at 96 degrees (docs/methods.md#gaussian-labels)


def test_flip_of_a_peaked_distribution_stays_within_the_point_spacing():
    method = methods.create("asg")
    angles = torch.tensor([[20.0, 30.0, -40.0], [-50.0, 10.0, 60.0]])
    peaked = torch.full_like(angles, 1000.0)
    targets = method.targets(angles, lambdas=peaked, mus=peaked)
    logits = torch.cat([t.clamp_min(1e-12).log() for t in targets.values()], 1)
    outputs = torch.cat([torch.zeros(2, 6), logits], dim=1)
    error = method.decode(method.flip_outputs(outputs)) - method.decode(outputs) * torch.tensor([-1.0, 1.0, -1.0])
    assert error.abs().max() < 8.0


def test_maev_from_raw_vectors_is_asgs_and_differs_from_the_uniform_one():
    """ASG's tester scores the normalised expectation vectors; ldlpose's maev the decoded rotation."""
    from ldlpose import metrics
    from ldlpose.geometry import image_matrix

    method = methods.create("asg", num_points=200)
    torch.manual_seed(0)
    outputs = torch.randn(16, method.num_outputs)
    truth = torch.tensor([[10.0, -20.0, 5.0]]).repeat(16, 1)
    vectors = method.expectation_vectors(outputs)
    assert torch.allclose(vectors.norm(dim=-1), torch.ones(16, 3, dtype=vectors.dtype), atol=1e-6)
    by_hand = []
    r_true = image_matrix(truth.double())
    for k in range(3):
        cos = (vectors[:, k].double() * r_true[:, :, k]).sum(-1).clamp(-1, 1)
        by_hand.append(torch.rad2deg(torch.acos(cos)))
    raw = metrics.maev_from_vectors(vectors, truth)
    assert raw == pytest.approx(float(torch.stack(by_hand).mean()), abs=1e-5)
    uniform = metrics.evaluate(method.decode(outputs), truth)["maev"]
    assert raw != pytest.approx(uniform, abs=1e-3)  # not orthogonalised: a different number
