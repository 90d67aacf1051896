"""6DRepNet's geodesic loss and the mirror of a 6D output (docs/methods.md#6drepnet, #flip)."""

import math

import pytest
import torch

import ldlpose.methods as methods
from ldlpose.geometry import euler_to_matrix, flip_matrices, sixd_to_matrix


def test_flip_of_the_6d_output_is_g_r_g():
    method = methods.create("sixdrepnet")
    outputs = torch.randn(100, 6, dtype=torch.float64)
    flipped = sixd_to_matrix(method.flip_outputs(outputs))
    assert torch.allclose(flipped, flip_matrices(sixd_to_matrix(outputs)), atol=1e-12)


def test_loss_is_the_geodesic_angle_in_radians():
    method = methods.create("sixdrepnet")
    truth = torch.tensor([[0.0, 0.0, 0.0], [10.0, 20.0, 30.0]])
    rotated = euler_to_matrix(torch.tensor([[0.0, 0.0, 90.0]])) @ euler_to_matrix(truth)  # 90 degrees off
    outputs = torch.cat([rotated[:, :, 0], rotated[:, :, 1]], dim=1)
    loss, parts = method.loss(outputs, {"angles_deg": truth})
    assert parts["geodesic_deg"].item() == pytest.approx(90.0, abs=1e-3)
    assert loss.item() == pytest.approx(math.pi / 2, abs=1e-5)


def test_outputs_for_holds_the_first_two_columns():
    method = methods.create("sixdrepnet")
    angles = torch.tensor([[30.0, -20.0, 50.0]], dtype=torch.float64)
    rotation = euler_to_matrix(angles)
    assert torch.allclose(method.outputs_for(angles), torch.cat([rotation[:, :, 0], rotation[:, :, 1]], 1))
    assert torch.allclose(method.decode(method.outputs_for(angles)), angles, atol=1e-9)
