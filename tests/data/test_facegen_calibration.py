"""facegen's two constants read off real annotations: the pitch its faces are turned up by
(``face.FRONTAL_PITCH_DEG``) and how ``frame_aflw`` places a face in AFLW2000's test crop. Both are
checked against the 16 AFLW2000 test pairs of ``../shared/realdata/aflw2000`` (never the dev pairs)."""

import numpy as np
import pytest
import scipy.io
from realfaces import AFLW, SKIP_REASON

from ldlpose.data import crops, facegen, records
from ldlpose.data.facegen.recipe import Recipe

pytestmark = pytest.mark.skipif(not AFLW.is_dir(), reason=SKIP_REASON)


def _pairs():
    for mat in sorted(AFLW.glob("*.mat")):
        data = scipy.io.loadmat(str(mat))
        pitch, yaw, roll = np.degrees(data["Pose_Para"][0][:3])
        if max(abs(yaw), abs(pitch), abs(roll)) <= 99:  # the benchmark's filter
            yield np.array([yaw, pitch, roll]), data


def _fit_error(real: np.ndarray, ours: np.ndarray) -> float:
    """Mean landmark distance after the best scale and shift (no rotation: roll is being tested)."""
    a, b = real - real.mean(0), ours - ours.mean(0)
    scale = (a * b).sum() / (b * b).sum()
    return float(np.linalg.norm(a - scale * b, axis=1).mean() / np.ptp(a[:, 1]))


def _mean_face(recipe: Recipe):
    landmarks = np.mean([facegen.make_face("train", i, recipe=recipe).landmarks for i in range(40)], axis=0)
    return type("MeanFace", (), {"landmarks": landmarks})()


def _error(face, extra_pitch: float = 0.0) -> float:
    turn = np.array([0.0, extra_pitch, 0.0])
    return float(np.mean([_fit_error(data["pt3d_68"][:2].T, facegen.project_landmarks(face, angles + turn))
                          for angles, data in _pairs()]))


def test_the_turned_up_face_fits_real_landmarks_at_their_labels():
    """Posed at the real faces' labels, the mean face fits their 3DMM landmarks best without any further
    pitch, and better than the upright face of facegen-v2 did."""
    tilted, upright = _mean_face(Recipe()), _mean_face(Recipe(frontal_pitch=False))
    at_labels = _error(tilted)
    assert at_labels < _error(upright)
    assert at_labels < min(_error(tilted, -4.0), _error(tilted, 4.0))


def test_the_labels_convention_is_the_one_real_landmarks_follow():
    """Any angle's sign flipped fits the real landmarks worse: yaw, pitch and roll mean what AFLW2000 means."""
    face = _mean_face(Recipe())
    right = _error(face)
    for flip in np.diag([-2.0, -2.0, -2.0]):  # angles + flip * angles negates one angle
        wrong = np.mean([_fit_error(data["pt3d_68"][:2].T, facegen.project_landmarks(face, angles + flip * angles))
                         for angles, data in _pairs()])
        assert right < wrong


def _view_fractions(box, points):
    """The landmark box's width and centre as fractions of the centred square view of crop ``box``."""
    x0, y0, x1, y1 = box
    side = min(x1 - x0, y1 - y0)
    vx, vy = x0 + (x1 - x0 - side) / 2, y0 + (y1 - y0 - side) / 2
    low, high = points.min(0), points.max(0)
    centre = (low + high) / 2
    return np.array([(high - low).max() / side, (centre[0] - vx) / side, (centre[1] - vy) / side])


def test_aflw_framing_places_faces_as_aflw2000s_test_crop_does():
    """Width of the face and its centre in the network's view: the simulated test crops' middle half
    lies within the real ones' range (AFLW2000's crop: its 21 points with (-1, 452) kept, k = 0.2)."""
    real = []
    for _, data in _pairs():
        box = tuple(int(v) for v in crops.hopenet_aflw2000().expand(records.landmark_box(data["pt2d"], "all")))
        real.append(_view_fractions(box, data["pt3d_68"][:2].T))
    real = np.array(real)
    rng, face = np.random.default_rng(0), facegen.make_face("train", 0)
    simulated = []
    for _ in range(300):
        points = facegen.project_landmarks(face, facegen.POSES.sample(rng))
        framing, _ = facegen.frame_aflw(rng, points)
        simulated.append(_view_fractions((framing.x0, framing.y0, framing.x0 + framing.side,
                                          framing.y0 + framing.side), points))
    low, high = np.percentile(simulated, 25, axis=0), np.percentile(simulated, 75, axis=0)
    assert (real.min(0) <= low).all() and (high <= real.max(0)).all(), (real.min(0), low, high, real.max(0))
    assert abs(np.median(np.array(simulated)[:, 1]) - np.median(real[:, 1])) < 0.06  # left of centre, as real
