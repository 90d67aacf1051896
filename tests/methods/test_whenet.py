"""WHENet's full-range yaw: circular decoding across the +/-180 seam and the wrapped loss (docs/methods.md#whenet)."""

import math

import pytest
import torch

import ldlpose.methods as methods


def yaw_logits(masses):
    """Outputs whose yaw softmax has the given {bin: mass}; pitch and roll uniform."""
    probs = torch.full((120,), 1e-12)
    for index, mass in masses.items():
        probs[index] = mass
    return torch.cat([probs.log(), torch.zeros(132)])[None]


def test_mass_split_across_the_seam_decodes_to_180_circularly_and_0_linearly():
    outputs = yaw_logits({118: 0.5, 1: 0.5})  # centres 175.5 and -175.5
    circular = methods.create("whenet").decode(outputs)[0, 0].item()
    linear = methods.create("whenet", yaw_decode="linear").decode(outputs)[0, 0].item()
    assert abs(abs(circular) - 180.0) < 1e-3
    assert linear == pytest.approx(0.0, abs=1e-3)


def test_circular_mean_by_hand():
    outputs = yaw_logits({119: 0.7, 0: 0.3})  # centres 178.5 and -178.5
    c = math.radians(178.5)
    expected = math.degrees(math.atan2(0.7 * math.sin(c) - 0.3 * math.sin(c), 0.7 * math.cos(c) + 0.3 * math.cos(c)))
    assert methods.create("whenet").decode(outputs)[0, 0].item() == pytest.approx(expected, abs=1e-3)
    assert expected == pytest.approx(179.4, abs=0.01)


def test_yaw_labels_wrap_and_cover_plus_minus_180():
    method = methods.create("whenet")
    targets = method.targets(torch.tensor([[179.0, 0.0, 0.0], [181.0, 0.0, 0.0], [-180.0, 0.0, 0.0]]))
    assert targets["yaw"].argmax(dim=1).tolist() == [119, 0, 0]
    decoded = method.decode(method.outputs_for(torch.tensor([[179.0, 0.0, 0.0], [-179.9, 0.0, 0.0]])))
    assert decoded[:, 0].tolist() == pytest.approx([178.5, -178.5], abs=1e-3)


def test_wrapped_loss_takes_the_short_way_round():
    method = methods.create("whenet", alpha=1.0)
    outputs = method.outputs_for(torch.tensor([[-178.5, 0.0, 0.0]]))  # decodes to -178.5
    _, parts = method.loss(outputs, {"angles_deg": torch.tensor([[178.5, 1.5, 1.5]])})
    assert parts["mse_deg2"].item() == pytest.approx(3.0**2, abs=1e-3)  # not 357^2
