"""Metrics on hand-computed cases; each would change under a swapped or sign-flipped convention."""


import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ldlpose.metrics import METRIC_NAMES, evaluate, per_sample_errors


def t(*rows):
    return torch.tensor(rows, dtype=torch.float64)


def test_mae_is_mean_of_the_three_per_angle_maes():
    true = t([0.0, 0.0, 0.0], [10.0, -20.0, 5.0])
    pred = t([1.0, 2.0, 3.0], [13.0, -20.0, 0.0])
    m = evaluate(pred, true)
    assert set(m) == set(METRIC_NAMES)
    assert m["mae_yaw"] == pytest.approx(2.0)
    assert m["mae_pitch"] == pytest.approx(1.0)
    assert m["mae_roll"] == pytest.approx(4.0)
    assert m["mae"] == pytest.approx(7.0 / 3.0)


@pytest.mark.parametrize(
    "offset, moved",
    [
        ([10.0, 0, 0], ("left", "front")),  # yaw turns about the down axis
        ([0, 10.0, 0], ("down", "front")),  # pitch turns about the left axis
        ([0, 0, 10.0], ("left", "down")),  # roll turns about the front axis
    ],
)
def test_vector_errors_of_single_axis_rotations(offset, moved):
    err = per_sample_errors(t(offset), t([0.0, 0.0, 0.0]))
    vec = dict(zip(("left", "down", "front"), err["vector"][0].tolist()))
    for name, value in vec.items():
        assert value == pytest.approx(10.0 if name in moved else 0.0, abs=1e-6), name
    assert float(err["geodesic"][0]) == pytest.approx(10.0)
    m = evaluate(t(offset), t([0.0, 0.0, 0.0]))
    assert m["maev"] == pytest.approx(20.0 / 3.0, abs=1e-6)
    assert m["geodesic"] == pytest.approx(10.0)


def test_geodesic_of_a_composed_pose():
    # 90 yaw then 90 pitch: rotation angle 120 degrees (trace of the product is 0).
    m = evaluate(t([90.0, 90.0, 0.0]), t([0.0, 0.0, 0.0]))
    assert m["geodesic"] == pytest.approx(120.0, abs=1e-6)


def test_perfect_prediction_is_zero_everywhere():
    a = t([20.0, -30.0, 40.0], [-60.0, 10.0, 0.0])
    assert all(v == pytest.approx(0.0, abs=1e-5) for v in evaluate(a, a).values())


def test_no_angle_wrapping_in_mae():
    m = evaluate(t([179.0, 0.0, 0.0]), t([-179.0, 0.0, 0.0]))
    assert m["mae_yaw"] == pytest.approx(358.0)
    assert m["geodesic"] == pytest.approx(2.0, abs=1e-6)


def test_bad_shapes_and_empty_sets_are_errors():
    with pytest.raises(ValueError, match="differ in shape"):
        evaluate(t([0.0, 0.0, 0.0]), t([0.0, 0.0, 0.0], [1.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        evaluate(torch.zeros(4), torch.zeros(4))
    with pytest.raises(ValueError, match="empty"):
        evaluate(torch.zeros(0, 3), torch.zeros(0, 3))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(-80, 80), min_size=6, max_size=6))
def test_geodesic_bounded_by_sum_of_euler_errors(values):
    pred, true = t(values[:3]), t(values[3:])
    m = evaluate(pred, true)
    # Each elementary rotation moves the pose by at most its own angle (triangle inequality on SO(3)).
    # 1e-5: acos near 1 resolves float64 rounding of the trace only to ~1e-6 degrees (equal poses
    # such as (18, 0, 18) vs itself gave 1.2e-6).
    assert m["geodesic"] <= 3 * m["mae"] + 1e-5
    assert 0.0 <= m["maev"] <= 180.0
