"""Hybrid coarse-fine labels and loss (docs/methods.md#hybrid)."""

import math

import pytest
import torch

import ldlpose.methods as methods

SIZES = (198, 66, 18, 6, 2)


def labels(angle):
    targets = methods.create("hybrid").targets(torch.tensor([[angle, angle, angle]]))
    return [targets["yaw" + ("" if k == 198 else f"_{k}")][0].argmax().item() for k in SIZES]


def test_layout_has_five_heads_per_angle():
    method = methods.create("hybrid")
    assert method.num_outputs == 3 * sum(SIZES) == 870
    assert method.layout["yaw"] == slice(0, 198) and method.layout["roll_2"].stop == 870


@pytest.mark.parametrize(
    "angle, expected",
    [
        (99.0, [197, 65, 17, 5, 1]),  # +99 is clamped into the last bins (the reference makes 198/66/18/6/2)
        (-99.0, [0, 0, 0, 0, 0]),
        (98.5, [197, 65, 17, 5, 1]),
        (0.0, [99, 33, 9, 3, 1]),  # bins of 1, 3, 11, 33, 99 degrees counted from -99
        (-0.5, [98, 32, 8, 2, 0]),
    ],
)
def test_labels_at_the_range_ends_and_centre(angle, expected):
    assert labels(angle) == expected


def test_fine_decoding_uses_one_degree_bins():
    method = methods.create("hybrid")
    decoded = methods.expectation_bias("hybrid", [[99.0, -99.0, 0.3]]) + torch.tensor([[99.0, -99.0, 0.3]])
    assert decoded[0].tolist() == pytest.approx([98.5, -98.5, 0.5], abs=1e-4)
    edge = methods.create("hybrid", decode="edge").decode(method.outputs_for(torch.tensor([[0.3, 0.3, 0.3]])))
    assert edge[0].tolist() == pytest.approx([0.0] * 3, abs=1e-4)


def test_loss_weights_each_head():
    weights = (7.0, 5.0, 3.0, 1.0, 1.0)
    method = methods.create("hybrid", alpha=2.0, aux_weights=weights)
    angles = torch.tensor([[10.0, 0.0, -20.0]])
    loss, parts = method.loss(torch.zeros(1, 870), {"angles_deg": angles})
    for k in SIZES:
        assert parts[f"ce_{k}"].item() == pytest.approx(3 * math.log(k), rel=1e-6)
    mse = 10.0**2 + 0.0 + 20.0**2  # uniform fine expectation over centres is 0
    expected = sum(w * 3 * math.log(k) for w, k in zip(weights, SIZES)) + 2.0 * mse
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_roll_bug_switch_trains_pitchs_two_bin_head_in_rolls_place():
    """Released train_hopenet.py: loss_roll adds loss_pitch_4 (the 2-bin CE) instead of loss_roll_4."""
    method, buggy = methods.create("hybrid"), methods.create("hybrid", roll_bug=True)
    angles = torch.tensor([[10.0, -50.0, 60.0]])  # pitch in the lower 2-bin class, roll in the upper
    outputs = torch.zeros(1, 870)
    outputs[0, method.layout["pitch_2"]] = torch.tensor([3.0, 0.0])
    outputs[0, method.layout["roll_2"]] = torch.tensor([0.0, 3.0])
    ce = torch.nn.functional.cross_entropy
    yaw2 = ce(outputs[:, method.layout["yaw_2"]], torch.tensor([1])).item()
    pitch2 = ce(outputs[:, method.layout["pitch_2"]], torch.tensor([0])).item()
    roll2 = ce(outputs[:, method.layout["roll_2"]], torch.tensor([1])).item()
    assert method.loss(outputs, {"angles_deg": angles})[1]["ce_2"].item() == pytest.approx(yaw2 + pitch2 + roll2)
    assert buggy.loss(outputs, {"angles_deg": angles})[1]["ce_2"].item() == pytest.approx(yaw2 + 2 * pitch2)
    grad = torch.zeros(1, 870, requires_grad=True)
    buggy.loss(grad, {"angles_deg": angles})[0].backward()
    assert grad.grad[0, method.layout["roll_2"]].abs().sum() == 0  # roll's 2-bin head learns nothing
    assert methods.method_class("hybrid").faithful == {"decode": "edge", "roll_bug": True}
    assert methods.create("hybrid").hparams.roll_bug is False  # off in the recommended mode
