"""synthhead: determinism, splits, pose limits, and the angle convention proven on rendered images."""

import dataclasses

import numpy as np
import pytest
import torch

from ldlpose import geometry
from ldlpose.data import synthhead as sh
from ldlpose.data.synthhead import Part
from ldlpose.errors import ConfigError

SIZE = 64


def centroid(parts: np.ndarray, part: Part) -> np.ndarray:
    """(x, y) pixel centre of mass of one part in a (H, W) part-id mask."""
    ys, xs = np.nonzero(parts == part)
    assert xs.size > 0, f"{part.name} is not visible"
    return np.array([xs.mean() + 0.5, ys.mean() + 0.5])


def render_parts(*angles):
    return sh.render(np.array(angles, dtype=float), size=SIZE, return_parts=True)[1]


# --- the convention ---------------------------------------------------------------------------

def test_projected_head_axes_are_geometry_axis_endpoints():
    # Head-frame left (+x), down (+y) and front (-z) turned by the pose and projected (x, y).
    angles = np.random.default_rng(0).uniform(-80, 80, (50, 3))
    turned = sh.head_matrix(angles) @ np.diag([1.0, 1.0, -1.0])  # columns: left, down, front
    expected = geometry.axis_endpoints_2d(torch.as_tensor(angles)).numpy()  # (N, axis, xy)
    np.testing.assert_allclose(turned[:, :2, :].transpose(0, 2, 1), expected, atol=1e-12)
    assert np.allclose(np.linalg.det(sh.head_matrix(angles)), 1.0)


def test_positive_yaw_turns_the_nose_to_the_image_left():
    left, right, frontal = render_parts([40, 0, 0], [-40, 0, 0], [0, 0, 0])
    x_left, x_right = centroid(left, Part.NOSE)[0], centroid(right, Part.NOSE)[0]
    x_frontal = centroid(frontal, Part.NOSE)[0]
    assert x_left < x_frontal - 3 and x_right > x_frontal + 3
    # Turning toward the image's left brings the subject's left side (image right) into view.
    assert (left == Part.EYE_LEFT).sum() > (left == Part.EYE_RIGHT).sum()


def test_positive_pitch_tilts_the_face_up():
    up, down = render_parts([0, 30, 0], [0, -30, 0])
    assert centroid(up, Part.NOSE)[1] < centroid(down, Part.NOSE)[1] - 3
    assert centroid(up, Part.LIPS)[1] < centroid(down, Part.LIPS)[1] - 3
    # Pitch must not move the nose sideways (it would if yaw and pitch were swapped).
    assert abs(centroid(up, Part.NOSE)[0] - centroid(down, Part.NOSE)[0]) < 1


@pytest.mark.parametrize("roll", [30.0, -30.0])
def test_positive_roll_tilts_the_face_clockwise(roll):
    (parts,) = render_parts([0, 0, roll])
    left_eye, right_eye = centroid(parts, Part.EYE_LEFT), centroid(parts, Part.EYE_RIGHT)
    assert left_eye[0] > right_eye[0]  # the subject's left eye is on the image's right
    # Clockwise in the image (y down): the image-right eye goes down for positive roll.
    slope_deg = np.degrees(np.arctan2(left_eye[1] - right_eye[1], left_eye[0] - right_eye[0]))
    assert slope_deg == pytest.approx(roll, abs=6)


def test_rendered_nose_points_along_the_drawn_front_axis():
    rng = np.random.default_rng(1)
    angles = rng.uniform(-1, 1, (60, 3)) * (80, 50, 40)
    front = geometry.axis_endpoints_2d(torch.as_tensor(angles)).numpy()[:, 2]
    keep = np.linalg.norm(front, axis=1) > 0.5  # the face is turned enough for a clear direction
    parts = sh.render(angles[keep], size=SIZE, return_parts=True)[1]
    for mask, axis in zip(parts, front[keep]):
        offset = centroid(mask, Part.NOSE) - SIZE / 2  # from the projected head centre
        cosine = offset @ axis / np.linalg.norm(offset) / np.linalg.norm(axis)
        assert cosine > 0.9


# --- determinism and splits -------------------------------------------------------------------

def collect(split="train", count=6, **kwargs):
    return list(sh.generate(split, count, size=32, **kwargs))


def test_same_seed_same_bytes_and_different_seed_differs():
    a, b, c = collect(seed=3), collect(seed=3), collect(seed=4)
    assert all(x.image.tobytes() == y.image.tobytes() for x, y in zip(a, b))
    assert all(np.array_equal(x.angles_deg, y.angles_deg) and x.box == y.box for x, y in zip(a, b))
    assert all(x.image.tobytes() != z.image.tobytes() for x, z in zip(a, c))


def test_chunks_equal_the_tail_of_a_full_run():
    full = collect(count=12, images_per_identity=4)
    tail = collect(count=7, start=5, images_per_identity=4)
    for x, y in zip(full[5:], tail):
        assert (x.key, x.subject) == (y.key, y.subject)
        assert x.image.tobytes() == y.image.tobytes()
        np.testing.assert_array_equal(x.angles_deg, y.angles_deg)


def test_identities_group_samples_and_never_cross_splits():
    samples = {split: collect(split, count=16, images_per_identity=4) for split in sh.SPLITS}
    subjects = {split: {s.subject for s in got} for split, got in samples.items()}
    assert all(len(names) == 4 for names in subjects.values())
    assert not (subjects["train"] & subjects["val"] or subjects["train"] & subjects["test"]
                or subjects["val"] & subjects["test"])
    # Not only the names: the same index in another split is another face.
    assert sh.make_identity("train", 0).parts != sh.make_identity("test", 0).parts
    keys = [s.key for got in samples.values() for s in got]
    assert len(set(keys)) == len(keys) and keys[0] == "train/000000"


def test_samples_have_the_documented_types():
    sample = collect(count=1)[0]
    assert sample.image.shape == (32, 32, 3) and sample.image.dtype == np.uint8
    assert sample.angles_deg.shape == (3,) and sample.subject == "synth-train-00000"
    x0, y0, x1, y1 = sample.box
    assert 0 < x1 - x0 < 32 and 0 < y1 - y0 < 32


def test_pose_limits_are_respected():
    rng = np.random.default_rng(0)
    for dist in (sh.PoseDistribution(), sh.PoseDistribution(limits_deg=(30, 10, 5), kind="uniform"),
                 sh.PoseDistribution(limits_deg=(20, 20, 20), std_deg=(50, 50, 50))):
        poses = np.array([dist.sample(rng) for _ in range(2000)])
        assert (np.abs(poses) <= dist.limits_deg).all()
        assert (np.abs(poses).max(axis=0) > 0.8 * np.array(dist.limits_deg)).all()
    narrow = sh.PoseDistribution(limits_deg=(10, 5, 3))
    assert all((np.abs(s.angles_deg) <= (10, 5, 3)).all() for s in collect(count=5, pose=narrow))


def test_images_vary_in_background_and_skin():
    samples = collect(count=24, images_per_identity=1)
    corners = np.array([s.image[:3, :3].reshape(-1, 3).mean(0) for s in samples])
    assert corners.std(axis=0).mean() > 20
    skins = np.array([sh.make_identity("train", i).skin for i in range(24)])
    assert np.ptp(skins.mean(axis=1)) > 0.25


def test_occluders_can_be_switched_off():
    scenes = [sh.sample_scene("train", i, sh.make_identity("train", 0), occluders=False) for i in range(30)]
    assert all(not s.extras for s in scenes)
    with_extras = [sh.sample_scene("train", i, sh.make_identity("train", 0)) for i in range(30)]
    assert any(s.extras for s in with_extras)
    scene = dataclasses.replace(with_extras[0], extras=())
    assert sh.render_scene(scene, 32)[0].shape == (32, 32, 3)


@pytest.mark.parametrize("kwargs, match", [
    ({"split": "training"}, "did you mean 'train'"),
    ({"count": -1}, "count must be an integer >= 0"),
    ({"size": 4}, "size must be an integer >= 8"),
])
def test_bad_arguments_are_explained(kwargs, match):
    args = {"split": "train", "count": 1} | kwargs
    with pytest.raises(ConfigError, match=match):
        sh.generate(args.pop("split"), args.pop("count"), **args)  # raises before any image


def test_bad_pose_distribution_is_explained():
    with pytest.raises(ConfigError, match="limits_deg must be three positive"):
        sh.PoseDistribution(limits_deg=(90, 0, 45))
    with pytest.raises(ConfigError, match="uniform"):
        sh.PoseDistribution(kind="uniformm")
