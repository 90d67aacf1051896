"""Helpers writing small fixtures in every real source format (no downloads); used by tests/data.

No conftest.py here on purpose: tests elsewhere import their own ``conftest`` by name, and a
second conftest module would shadow it. Tests import the ``make_dataset`` fixture from here.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from PIL import Image

from ldlpose.cli import main
from ldlpose.data.records import ImageOptions, make_row
from ldlpose.data.shards import ShardWriter

RED, BLUE = (255, 0, 0), (0, 0, 255)
# Landmarks of every 300W-LP/AFLW2000 fixture face: a box x 60..140, y 70..150 in a 200 x 200 image.
LANDMARKS = np.array([[60.0, 140.0, 100.0, 80.0], [70.0, 150.0, 110.0, 90.0]])


def two_colour_image(width: int, height: int, left=RED, right=BLUE) -> Image.Image:
    """Left half ``left``, right half ``right`` (RGB): shows both colour order and mirroring."""
    arr = np.zeros((height, width, 3), dtype=np.uint8)
    arr[:, : width // 2] = left
    arr[:, width // 2:] = right
    return Image.fromarray(arr)


def pose_para(yaw_deg: float, pitch_deg: float, roll_deg: float) -> np.ndarray:
    """300W-LP's 1 x 7 Pose_Para: [pitch, yaw, roll] in radians, translation, scale."""
    return np.array([[math.radians(pitch_deg), math.radians(yaw_deg), math.radians(roll_deg),
                      10.0, 20.0, 30.0, 0.001]])


def write_face(folder: Path, stem: str, angles_deg, landmarks=LANDMARKS) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    two_colour_image(200, 200).save(folder / f"{stem}.jpg", quality=95)
    scipy.io.savemat(folder / f"{stem}.mat", {"Pose_Para": pose_para(*angles_deg), "pt2d": landmarks})


def run_cli(*argv) -> int:
    return main(["prepare", *map(str, argv)])


def marker_image(yaw_deg: float, size: int = 64) -> Image.Image:
    """Grey picture with a white block on the image's left when yaw > 0, where positive yaw turns
    the face (ldlpose.geometry); so the marker side encodes the yaw sign."""
    arr = np.full((size, size, 3), 90, dtype=np.uint8)
    x0 = 4 if yaw_deg > 0 else size - 20
    arr[20:44, x0:x0 + 16] = 255
    return Image.fromarray(arr)


def marker_on_left(image_chw) -> bool:
    """Is the bright block in the left half of a (normalised) image tensor?"""
    brightness = image_chw.mean(0)
    half = brightness.shape[1] // 2
    return bool(brightness[:, :half].mean() > brightness[:, half:].mean())


def bgr_npz(path: Path, rgb_images, poses) -> None:
    """An npz as FSA-Net writes it: ``image`` BGR (cv2 order), ``pose`` [yaw, pitch, roll] degrees."""
    rgb = np.stack([np.asarray(img) for img in rgb_images])
    np.savez(path, image=rgb[..., ::-1], pose=np.asarray(poses, dtype=np.float32), img_size=rgb.shape[1])


F = np.diag([1.0, -1.0, -1.0])


def biwi_rotation(angles_deg) -> np.ndarray:
    """The BIWI pose-file matrix M of a pose: R = F M^T F (docs/methods.md#biwi), so M = F R^T F."""
    import torch

    from ldlpose.geometry import euler_to_matrix

    r = euler_to_matrix(torch.tensor([angles_deg], dtype=torch.float64))[0].numpy()
    return F @ r.T @ F


def write_biwi_video(root: Path, video: str, frames: dict[int, tuple], *, size=(160, 120), focal=100.0,
                     t_ext=(0.0, 10.0, 0.0)) -> None:
    """A raw BIWI video folder: frame_XXXXX_rgb.png, frame_XXXXX_pose.txt and rgb.cal.

    ``frames`` maps a frame number to (angles_deg, head centre in mm)."""
    folder = root / video
    folder.mkdir(parents=True, exist_ok=True)
    w, h = size
    (folder / "rgb.cal").write_text(
        f"{focal} 0 {w / 2}\n0 {focal} {h / 2}\n0 0 1\n\n0 0 0 0\n\n1 0 0\n0 1 0\n0 0 1\n\n"
        f"{t_ext[0]} {t_ext[1]} {t_ext[2]}\n")
    for n, (angles, centre) in frames.items():
        two_colour_image(w, h).save(folder / f"frame_{n:05d}_rgb.png")
        m = biwi_rotation(angles)
        rows = "\n".join(" ".join(f"{v:.10f}" for v in row) for row in m)
        (folder / f"frame_{n:05d}_pose.txt").write_text(f"{rows} \n\n{' '.join(map(str, centre))} \n")


@pytest.fixture
def make_dataset(tmp_path):
    """Write a prepared dataset straight from (image, angles, subject) triples; returns its folder."""
    def build(items, name="fixture", shard_rows=4096, crop="fixture", image_format="jpeg"):
        out = tmp_path / name
        options = ImageOptions(format=image_format)
        writer = ShardWriter(out, dataset=name, shard_rows=shard_rows, image_format=image_format)
        for i, (img, angles, subject) in enumerate(items):
            writer.add(make_row(img, angles, subject=subject, source=name, key=f"k{i}",
                                box=(0, 0, img.width, img.height), options=options))
        writer.close(source={}, crop={"name": crop}, image=options.as_dict(), subject_rule="test")
        return out
    return build
