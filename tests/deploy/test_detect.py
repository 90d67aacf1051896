"""The MTCNN detector on real AFLW2000 pictures: every face found, where its landmarks say it is."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from realfaces import AFLW, SKIP_REASON, iou, landmark_box

from ldlpose.deploy.detect import FaceDetector, weights_folder

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not AFLW.is_dir(), reason=SKIP_REASON)]


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return FaceDetector()


def test_the_weights_come_from_the_installed_package_not_the_network():
    folder = weights_folder()
    assert folder.parts[-3:] == ("mtcnn", "assets", "weights")
    assert sorted(p.name for p in folder.glob("*.lz4")) == ["onet.lz4", "pnet.lz4", "rnet.lz4"]


def test_every_real_face_is_found_once_overlapping_its_landmark_box(detector):
    """All 16 pictures (yaw -55 to +71 degrees): one face each, IoU with the pt3d_68 box >= 0.5."""
    overlaps = {}
    for jpg in sorted(AFLW.glob("*.jpg")):
        faces = detector.detect(np.asarray(Image.open(jpg).convert("RGB")))
        assert len(faces) == 1, (jpg.name, [f.box for f in faces])
        overlaps[jpg.name] = iou(faces[0].box, landmark_box(jpg))
        assert faces[0].score > 0.9
    assert len(overlaps) == 16
    assert min(overlaps.values()) >= 0.5, overlaps


def test_landmarks_sit_inside_the_box_eyes_above_the_mouth(detector):
    jpg = AFLW / "image00050.jpg"  # a frontal face (yaw 1 degree)
    (face,) = detector.detect(np.asarray(Image.open(jpg).convert("RGB")))
    x0, y0, x1, y1 = face.box
    points = face.landmarks
    assert points.shape == (5, 2)
    assert ((points[:, 0] > x0) & (points[:, 0] < x1) & (points[:, 1] > y0) & (points[:, 1] < y1)).all()
    left_eye, right_eye, nose, mouth_left, mouth_right = points
    assert left_eye[0] < nose[0] < right_eye[0] and mouth_left[0] < mouth_right[0]
    assert max(left_eye[1], right_eye[1]) < nose[1] < min(mouth_left[1], mouth_right[1])


def test_a_flat_picture_and_noise_have_no_face(detector):
    assert detector.detect(np.full((240, 320, 3), (90, 140, 200), dtype=np.uint8)) == []
    noise = np.random.default_rng(0).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    assert detector.detect(noise) == []


def test_a_small_face_in_a_large_photo_is_found_where_it_is(detector):
    """The picture shrunk to 90 px (a face of about 45 px) pasted into a 640 x 480 grey photo."""
    jpg = AFLW / "image00050.jpg"
    small = Image.open(jpg).convert("RGB").resize((90, 90), Image.Resampling.BILINEAR)
    photo = Image.new("RGB", (640, 480), (120, 120, 120))
    photo.paste(small, (400, 300))
    (face,) = detector.detect(np.asarray(photo))
    scale = 90 / Image.open(jpg).width
    truth = np.asarray(landmark_box(jpg)) * scale + [400, 300, 400, 300]
    assert iou(face.box, truth) >= 0.5, (face.box, truth)


def test_min_face_px_below_the_window_is_refused():
    from ldlpose.errors import LdlposeError

    with pytest.raises(LdlposeError, match="min_face_px must be >= 12"):
        FaceDetector(min_face_px=8)
