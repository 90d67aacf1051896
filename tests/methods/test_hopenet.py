"""HopeNet labels, decoding conventions and loss (docs/methods.md#hopenet, #bins)."""

import math

import pytest
import torch

import ldlpose.methods as methods


def one_hot_logits(index, bins=66):
    logits = torch.full((1, bins), -50.0)
    logits[0, index] = 0.0
    return logits.repeat(1, 3)


@pytest.mark.parametrize("decode, expected", [("center", 3 * 33 - 97.5), ("edge", 3 * 33 - 99)])
def test_decoding_maps_a_bin_to_its_centre_or_left_edge(decode, expected):
    decoded = methods.create("hopenet", decode=decode).decode(one_hot_logits(33))
    assert decoded[0].tolist() == pytest.approx([expected] * 3, abs=1e-4)


def test_labels_clamp_at_the_range_ends():
    targets = methods.create("hopenet").targets(torch.tensor([[99.0, -99.0, 98.9]]))
    assert [targets[a][0].argmax().item() for a in ("yaw", "pitch", "roll")] == [65, 0, 65]


def test_loss_is_ce_plus_alpha_mse_in_degrees():
    method = methods.create("hopenet", alpha=2.0, decode="edge")
    angles = torch.tensor([[10.0, 0.0, -20.0]])
    loss, parts = method.loss(torch.zeros(1, 198), {"angles_deg": angles})
    # Uniform logits: CE = ln 66 per angle; the left-edge expectation is 3 * 32.5 - 99 = -1.5.
    mse = (10 + 1.5) ** 2 + 1.5**2 + (-20 + 1.5) ** 2
    assert parts["ce"].item() == pytest.approx(3 * math.log(66), rel=1e-6)
    assert parts["mse_deg2"].item() == pytest.approx(mse, rel=1e-6)
    assert loss.item() == pytest.approx(3 * math.log(66) + 2.0 * mse, rel=1e-6)
