"""DADL soft labels and loss (the paper's eqs. 2-8 and 13; docs/methods.md#dadl), checked by hand."""

import math

import pytest
import torch

import ldlpose.methods as methods


def peak_mass(sigma_bins):
    """Peak of a bin-centred Gaussian normalised over the bins (far from the range ends)."""
    return 1.0 / sum(math.exp(-(k**2) / (2 * sigma_bins**2)) for k in range(-65, 66))


@pytest.mark.parametrize(
    "preset, expected",
    [("biwi", (0.967, 0.664, 0.992)), ("aflw2000", (0.399, 0.1995, 0.7865))],
)
def test_peak_masses_of_the_presets(preset, expected):
    method = methods.create("dadl", preset=preset, center="bin")
    targets = method.targets(torch.tensor([[0.0, 0.0, 0.0]], dtype=torch.float64))
    peaks = [targets[a][0].max().item() for a in ("yaw", "pitch", "roll")]
    assert peaks == pytest.approx(expected, abs=1e-3)  # docs/methods.md#dadl (BIWI) and hand sums (AFLW2000)
    assert peaks == pytest.approx([peak_mass(s) for s in method.sigmas_bins], abs=1e-9)
    assert all(targets[a][0].argmax() == 33 for a in targets)  # 0 degrees lies in bin 33


def test_widths_are_per_angle_and_in_bins():
    targets = methods.create("dadl").targets(torch.tensor([[0.0, 0.0, 0.0]]))
    # sigma 1 / 2 / 0.5 bins: read in degrees, every label would be one-hot (peak ~1).
    assert targets["pitch"][0].max() < targets["yaw"][0].max() < targets["roll"][0].max() < 0.8


def test_loss_is_ce_plus_alpha_mse_plus_beta_kl():
    method = methods.create("dadl", alpha=0.5, beta=2.0)
    angles = torch.tensor([[20.0, -10.0, 5.0]])
    loss, parts = method.loss(torch.zeros(1, 198), {"angles_deg": angles})  # uniform prediction
    soft = method.targets(angles)
    ce = 3 * math.log(66)
    kl = sum((t * torch.log(t.clamp_min(1e-30) * 66)).sum().item() for t in soft.values())
    mse = (20.0**2 + 10.0**2 + 5.0**2)  # the uniform expectation over bin centres is 0
    assert parts["ce"].item() == pytest.approx(ce, rel=1e-5)
    assert parts["kl"].item() == pytest.approx(kl, rel=1e-4)
    assert parts["mse_deg2"].item() == pytest.approx(mse, rel=1e-5)
    assert loss.item() == pytest.approx(ce + 0.5 * mse + 2.0 * kl, rel=1e-5)
