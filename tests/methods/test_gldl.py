"""GLDL targets and loss against the paper's eqs. 1 and 5, computed by hand with numpy
(docs/methods.md#gldl, #gaussian-labels)."""

import numpy as np
import pytest
import torch

import ldlpose.methods as methods

BINS = np.arange(66)


def yaw_target(method, yaw_deg):
    return method.targets(torch.tensor([[yaw_deg, 0.0, 0.0]], dtype=torch.float64))["yaw"][0].numpy()


def test_literal_target_is_nearly_uniform_as_spec_2_2_says():
    # The paper's eq. 1 for GT -30 degrees (bin 23), sigma 4 bins: softmax(exp(-(l - 23)^2 / 32) / 4).
    method = methods.create("gldl", target="literal", center="bin", decode="edge")
    target = yaw_target(method, -30.0)
    g = np.exp(-((BINS - 23) ** 2) / (2 * 4.0**2)) / 4.0
    expected = np.exp(g) / np.exp(g).sum()
    np.testing.assert_allclose(target, expected, rtol=1e-6)
    assert target.max() == pytest.approx(0.0187, abs=5e-5)
    assert target.min() == pytest.approx(0.0187 / np.exp(0.25), abs=5e-5)  # peak/floor = e^(1/sigma)
    assert pytest.approx(0.0152, abs=5e-5) == 1 / 66
    assert -(target * np.log(target)).sum() == pytest.approx(4.1868, abs=1e-4)
    decoded = methods.expectation_bias("gldl", [[-30.0, 0.0, 0.0]], **method.faithful)[0, 0] - 30.0
    assert decoded == pytest.approx(3 * (expected * BINS).sum() - 99, abs=1e-4)
    assert decoded == pytest.approx(-2.6, abs=0.05)


def test_normalized_target_is_a_gaussian_in_bins_not_degrees():
    method = methods.create("gldl", sigma=4.0, center="bin")
    target = yaw_target(method, -30.0)
    expected = np.exp(-((BINS - 23) ** 2) / 32.0)
    np.testing.assert_allclose(target, expected / expected.sum(), rtol=1e-6)
    assert target.max() == pytest.approx(0.0997, abs=1e-4)  # 1 / sum_k exp(-k^2 / 32), a 12-degree width


def test_continuous_centre_sits_between_bins():
    # 1.0 degree lies 1/3 into bin 33 (centre 1.5): continuous coordinate 33 - 1/6.
    target = yaw_target(methods.create("gldl", sigma=2.0), 1.0)
    expected = np.exp(-((BINS - (33 - 1 / 6)) ** 2) / 8.0)
    np.testing.assert_allclose(target, expected / expected.sum(), rtol=1e-6)


@pytest.mark.parametrize("angle, bias", [(0.0, 0.0), (60.0, -0.02), (80.0, -1.44), (90.0, -4.67), (96.0, -7.77)])
def test_expectation_bias_matches_the_documented_table(angle, bias):
    measured = methods.expectation_bias("gldl", [[angle, angle, angle]], sigma=4.0)
    assert measured[0].tolist() == pytest.approx([bias] * 3, abs=0.006)


def test_loss_is_euclid_plus_kl_plus_alpha_mse_in_degrees():
    method = methods.create("gldl", sigma=4.0, alpha=0.01)
    angles = torch.tensor([[-30.0, 10.0, 45.0]])
    loss, parts = method.loss(torch.zeros(1, 198), {"angles_deg": angles})  # uniform prediction
    euclid = kl = 0.0
    for i in range(3):
        d = yaw_target(method, angles[0, i].item())
        euclid += np.sqrt(((d - 1 / 66) ** 2).sum())  # non-squared L2 norm
        kl += (d * np.log(d * 66)).sum()
    mse = ((angles[0].numpy() - 0.0) ** 2).sum()  # the uniform expectation over centres is 0 degrees
    assert parts["euclid"].item() == pytest.approx(euclid, rel=1e-5)
    assert parts["kl"].item() == pytest.approx(kl, rel=1e-5)
    assert parts["mse_deg2"].item() == pytest.approx(mse, rel=1e-5)
    assert loss.item() == pytest.approx(euclid + kl + 0.01 * mse, rel=1e-5)
