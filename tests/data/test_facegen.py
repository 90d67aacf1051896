"""facegen: exact labels (landmarks and the rendered nose against ldlpose.geometry), determinism per
sample, and 300W-LP's training crop applied to the generated faces."""

import numpy as np
import pytest
import torch

from ldlpose import geometry
from ldlpose.data import crops, facegen, records
from ldlpose.data.facegen.landmarks import NOSE_TIP
from ldlpose.data.protocols import VIEWS
from ldlpose.data.synthhead import Part
from ldlpose.errors import ConfigError

GRID = np.array([(y, p, r) for y in range(-90, 91, 15) for p in range(-45, 46, 15) for r in range(-45, 46, 15)],
                dtype=float)


def test_projected_landmarks_follow_geometry_axes_on_the_pose_grid():
    """A head point x*left + y*down - z*front (head frame, z away from the camera) must project to the
    same combination of geometry.axis_endpoints_2d: the labels are the rotation that drew the face."""
    face = facegen.make_face("val", 7)
    axes = geometry.axis_endpoints_2d(torch.as_tensor(GRID)).numpy()  # (N, left/down/front, xy)
    coef = face.landmarks * np.array([1.0, 1.0, -1.0])
    for angles, ends in zip(GRID, axes):
        np.testing.assert_allclose(facegen.project_landmarks(face, angles), coef @ ends, atol=1e-9)


def test_rendered_nose_is_where_the_projected_nose_tip_lands():
    """Render each grid pose with the face filling a 96-pixel frame; the pixel under the projected
    nose tip must belong to the nose wherever the tip faces the camera (|yaw| <= 60, pitch >= -30:
    beyond, the cheek or the tip's own side can hide the exact tip pixel)."""
    face, size = facegen.make_face("val", 3), 96
    checked = 0
    for angles in GRID:
        if abs(angles[0]) > 60 or angles[1] < -30:
            continue
        framing = facegen.Framing(-1.3, -1.2, 2.6)
        tip = (facegen.project_landmarks(face, angles)[NOSE_TIP] - [framing.x0, framing.y0]) / framing.side * size
        _, parts = facegen.render_parts(face, angles, framing, size)
        x, y = np.floor(tip).astype(int)
        window = parts[max(y - 1, 0):y + 2, max(x - 1, 0):x + 2]
        assert (window == Part.NOSE).any(), f"no nose pixel at the projected tip {tip} for pose {angles}"
        checked += 1
    assert checked > 100


def test_samples_are_the_same_whatever_range_generates_them():
    whole = list(facegen.generate("train", 12, size=32, images_per_identity=4))
    part = list(facegen.generate("train", 3, size=32, start=5, images_per_identity=4))
    again = list(facegen.generate("train", 12, size=32, images_per_identity=4))
    for a, b in zip(whole[5:8], part):
        assert a.key == b.key and a.subject == b.subject
        np.testing.assert_array_equal(a.image, b.image)
        np.testing.assert_array_equal(a.angles_deg, b.angles_deg)
    assert all(np.array_equal(a.image, b.image) for a, b in zip(whole, again))
    assert len({s.subject for s in whole}) == 3 and not np.array_equal(whole[0].image, whole[1].image)


def test_poses_cover_300w_lp_ranges():
    angles = np.array([s.angles_deg for s in facegen.generate("val", 300, size=16)])
    assert np.abs(angles).max(axis=0).tolist() <= [90.0, 45.0, 45.0]
    assert np.abs(angles[:, 0]).max() > 75 and np.abs(angles[:, 1:]).max() > 25


def test_training_crop_is_300w_lp_recipe_on_the_68_landmarks():
    """The image a 300W-LP-framed sample shows is the training crop of its landmarks (every point
    kept, as HopeNet's loader) followed by the input view's centred square: cut a large render of the
    same face with the recipe and the view, and it must match the generated crop."""
    face, angles, k = facegen.make_face("train", 2), np.array([30.0, -10.0, 12.0]), 0.3
    points = facegen.project_landmarks(face, angles)
    big_frame, big = facegen.Framing(-3.0, -3.0, 6.0), 384
    picture, _ = facegen.render_parts(face, angles, big_frame, big)
    pt2d = ((points - [big_frame.x0, big_frame.y0]) / big_frame.side * big).T
    from PIL import Image

    cut, _, _ = crops.hopenet_300wlp(k).crop(Image.fromarray(picture), pt2d)
    view = VIEWS["centre-square"].box(*cut.size)
    expected = np.asarray(cut.resize((64, 64), Image.Resampling.BILINEAR, box=view), dtype=float)
    framing = facegen.frame(points, k)
    got = facegen.render_face(face, angles, framing, 64).astype(float)
    assert np.abs(got - expected).mean() < 6
    shifted = facegen.render_face(face, angles, facegen.Framing(framing.x0 + 0.15 * framing.side, framing.y0,
                                                               framing.side), 64).astype(float)
    assert np.abs(shifted - expected).mean() > 2 * np.abs(got - expected).mean()
    assert records.landmark_box(pt2d, "all")[0] > 0  # the recipe saw the whole face


def test_aflw_framing_leaves_black_outside_the_picture():
    rng = np.random.default_rng(0)
    face = facegen.make_face("train", 0)
    points = facegen.project_landmarks(face, np.zeros(3))
    _, picture = facegen.frame_aflw(rng, points)
    assert picture[1] < 0.5 < picture[3] and picture[0] < picture[2]  # the face is inside the picture


def test_bad_arguments_fail_before_rendering():
    with pytest.raises(ConfigError, match="count"):
        facegen.generate("train", -1)
    with pytest.raises(ConfigError, match="split"):
        facegen.generate("holdout", 1)
