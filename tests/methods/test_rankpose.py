"""RankPose's bounded head and pair ranking loss (docs/methods.md#rankpose), by hand."""

import math

import pytest
import torch

import ldlpose.methods as methods
from ldlpose.methods._cosine import CosineHead


def test_head_is_180_times_the_cosine_and_bounded():
    head = CosineHead(4, 3)
    features = torch.randn(10, 4)
    out = head(features)
    w = head.weight.detach()
    expected = 180 * (features @ w.T) / (features.norm(dim=1, keepdim=True) * w.norm(dim=1))
    assert torch.allclose(out, expected, atol=1e-4)
    assert torch.allclose(head(7.0 * features), out, atol=1e-4) and out.abs().max() <= 180.0
    assert isinstance(methods.create("rankpose").head(4), CosineHead)


def pair_loss(signed, margin=0.0):
    method = methods.create("rankpose", signed=signed, margin=margin, rank_weight=1.0)
    angles = torch.tensor([[-40.0, 5.0, 5.0], [-10.0, 5.0, 5.0]])  # pitch/roll tie: left out
    outputs = torch.tensor([[-30.0, 5.0, 5.0], [-20.0, 5.0, 5.0]])
    return method.loss(outputs, {"angles_deg": angles, "subject": torch.tensor([7, 7])})


@pytest.mark.parametrize("signed, margin, rank",
                         [(True, 0.0, 0.0), (False, 0.0, 10.0), (True, 15.0, 5.0), (False, 5.0, 15.0)])
def test_margin_ranking_by_hand(signed, margin, rank):
    # t = sign(-40 - -10) = -1; signed: max(0, -t (-30 - -20) + m) = max(0, m - 10);
    # as coded: max(0, -t (|-30| - |-20|) + m) = 10 + m, punishing a correctly ordered pair.
    loss, parts = pair_loss(signed, margin)
    mse = (10.0**2 + 10.0**2) / 2
    assert parts["rank"].item() == pytest.approx(rank)
    assert parts["mse_deg2"].item() == pytest.approx(mse)
    assert loss.item() == pytest.approx(mse + rank)
    assert parts["pairs"].item() == 1


def test_only_same_subject_pairs_are_ranked():
    method = methods.create("rankpose", signed=False)
    batch = {"angles_deg": torch.tensor([[-40.0, 0, 0], [-10.0, 0, 0]]), "subject": torch.tensor([1, 2])}
    _, parts = method.loss(torch.tensor([[-30.0, 0, 0], [-20.0, 0, 0]]), batch)
    assert parts["pairs"].item() == 0 and parts["rank"].item() == 0.0
    _, parts = method.loss(torch.zeros(2, 3), {"angles_deg": batch["angles_deg"]})  # no subject ids
    assert parts["rank"].item() == 0.0 and math.isclose(parts["mse_deg2"].item(), (40**2 + 10**2) / 2)


def test_released_mse_balance_is_two_thirds_of_the_angle_sum():
    """The released loss adds nn.MSELoss() of each image of a pair (means over batch and angles)."""
    angles = torch.tensor([[-40.0, 5.0, 5.0], [-10.0, 5.0, 5.0]])
    outputs = torch.tensor([[-30.0, 8.0, 1.0], [-20.0, 5.0, 9.0]])
    batch = {"angles_deg": angles, "subject": torch.tensor([7, 7])}
    mse_loss = torch.nn.functional.mse_loss
    released = mse_loss(outputs[:1], angles[:1]) + mse_loss(outputs[1:], angles[1:])
    loss, parts = methods.create("rankpose", signed=False, mse_reduction="released").loss(outputs, batch)
    assert parts["mse_deg2"].item() == pytest.approx(released.item())
    assert loss.item() == pytest.approx(released.item() + parts["rank"].item())
    summed, _ = methods.create("rankpose", signed=False, rank_weight=1.5).loss(outputs, batch)
    assert summed.item() == pytest.approx(1.5 * loss.item())  # the same balance, scaled
    assert methods.method_class("rankpose").faithful["mse_reduction"] == "released"
