"""viz: the drawn axes point where the convention says, and grids tile with captions."""

import numpy as np
import pytest

from ldlpose.report import drawing as viz

BLUE, RED, GREEN = viz.AXIS_COLOURS[2], viz.AXIS_COLOURS[0], viz.AXIS_COLOURS[1]


def pixels_of(image: np.ndarray, colour) -> np.ndarray:
    """(x, y) of the pixels painted exactly ``colour``."""
    ys, xs = np.nonzero((image == np.array(colour, dtype=np.uint8)).all(axis=-1))
    return np.stack([xs, ys], axis=1)


def blank(size=64):
    return np.full((size, size, 3), 128, dtype=np.uint8)


def test_draw_pose_returns_a_copy_of_the_same_shape():
    image = blank()
    drawn = viz.draw_pose(image, [10, 20, 30])
    assert drawn.shape == image.shape and drawn.dtype == np.uint8
    assert (image == 128).all() and (drawn != 128).any()


@pytest.mark.parametrize("angles, axis, expect", [
    ([45, 0, 0], 0, "less"),  # positive yaw: the front axis points to the image's left
    ([-45, 0, 0], 0, "greater"),
    ([0, 45, 0], 1, "less"),  # positive pitch: the front axis points up (y down)
    ([0, -45, 0], 1, "greater"),
])
def test_front_axis_follows_the_convention(angles, axis, expect):
    drawn = pixels_of(viz.draw_pose(blank(), angles), BLUE)
    assert len(drawn) > 5
    offset = drawn[:, axis].mean() - 32
    assert offset < -5 if expect == "less" else offset > 5


def test_positive_roll_turns_the_left_axis_down_clockwise():
    drawn = pixels_of(viz.draw_pose(blank(), [0, 0, 30], center=(32, 32), size=25), RED)
    assert drawn[:, 0].mean() > 32 and drawn[:, 1].mean() > 32.5  # right and below the centre
    down = pixels_of(viz.draw_pose(blank(), [0, 0, 0]), GREEN)
    assert down[:, 1].mean() > 40 and abs(down[:, 0].mean() - 32) < 2


def test_image_grid_tiles_images_with_captions():
    tiles = [np.full((20, 30, 3), v, dtype=np.uint8) for v in (0, 60, 120, 180, 240)]
    grid = viz.image_grid(tiles, 2, captions=[viz.pose_caption([30, 0, -5.4])] * 5, pad=2)
    assert grid.dtype == np.uint8 and grid.ndim == 3
    assert grid.shape[1] == 2 * (30 + 2) + 2 and grid.shape[0] > 3 * (20 + 2)
    assert (grid[2:22, 34:64] == 60).all()  # second tile, first row
    plain = viz.image_grid(tiles, 3)
    assert plain.shape == (2 * 22 + 2, 3 * 32 + 2, 3)
    assert viz.pose_caption([30, 0, -5.4]) == "y=30 p=0 r=-5"


def test_image_grid_rejects_mismatched_captions():
    with pytest.raises(ValueError, match="2 captions for 1 images"):
        viz.image_grid([blank()], 1, captions=["a", "b"])


def test_draw_faces_boxes_each_face_and_draws_its_axes_from_the_box_centre():
    photo = np.full((60, 120, 3), 128, dtype=np.uint8)
    faces = [((10, 10, 50, 50), [45, 0, 0]), ((70, 10, 110, 50), [-45, 0, 0])]
    drawn = viz.draw_faces(photo, faces, captions=False, legend=False)  # the axes alone (captions: below)
    assert drawn.shape == photo.shape and (photo == 128).all()
    box = pixels_of(drawn, viz.BOX_COLOUR)
    assert {(10, 10), (49, 49), (70, 10), (109, 49)} <= {tuple(p) for p in box}
    front = pixels_of(drawn, BLUE)
    left_face, right_face = front[front[:, 0] < 60], front[front[:, 0] >= 60]
    # Positive yaw turns the first face's front axis toward the image's left, negative the second's right.
    assert left_face[:, 0].mean() < 30 - 3 and right_face[:, 0].mean() > 90 + 3
    assert abs(left_face[:, 0].max() - 30) <= 1 and abs(right_face[:, 0].min() - 90) <= 1  # from the centres


def panel_of(image: np.ndarray) -> np.ndarray:
    """Where the dark label/legend panels are."""
    return (image == np.array(viz.LABEL_BACKGROUND, dtype=np.uint8)).all(axis=-1)


def test_each_face_gets_its_angles_written_beside_its_box():
    photo = np.full((400, 600, 3), 128, dtype=np.uint8)
    drawn = viz.draw_faces(photo, [((100, 100, 250, 250), [30.24, -10, 5])], legend=False)
    panel = panel_of(drawn)
    ys, xs = np.nonzero(panel)
    assert xs.min() >= 250 and ys.min() == 100  # right of the box, level with its top
    written = (drawn[ys.min():ys.max() + 1, xs.min():xs.max() + 1] > 200).all(axis=-1)
    assert written.sum() > 100  # white text on the panel
    assert viz._angle_lines([30.24, -10, 5]) == ["yaw +30.2\N{DEGREE SIGN}", "pitch -10.0\N{DEGREE SIGN}",
                                                  "roll +5.0\N{DEGREE SIGN}"]
    # A box at the right edge has its caption on its left, inside the picture.
    edge = panel_of(viz.draw_faces(photo, [((450, 100, 600, 250), [0, 0, 0])], legend=False))
    ys, xs = np.nonzero(edge)
    assert xs.max() < 450 and xs.min() >= 0
    # Two faces: each caption says which face it is, so it is one line taller than a lone face's.
    two = panel_of(viz.draw_faces(photo, [((100, 100, 250, 250), [0, 0, 0]), ((100, 260, 250, 390), [0, 0, 0])],
                                  legend=False))
    assert two[100:260].any(axis=1).sum() > panel.any(axis=1).sum()


def test_the_legend_names_each_axis_colour_away_from_the_faces():
    photo = np.full((400, 600, 3), 128, dtype=np.uint8)
    drawn = viz.draw_faces(photo, [((250, 50, 350, 150), [0, 0, 0])], captions=False)
    corner = drawn[250:, :300]  # lower left: free of the face
    assert panel_of(corner).sum() > 1000
    for colour in viz.AXIS_COLOURS:  # a swatch of each axis colour inside the legend
        assert len(pixels_of(corner, colour)) > 10
    # A face in the lower-left corner pushes the legend to the lower right.
    moved = viz.draw_faces(photo, [((0, 250, 150, 400), [0, 0, 0])], captions=False)
    assert panel_of(moved[250:, 300:]).sum() > 1000 and not panel_of(moved[:, :300]).any()
