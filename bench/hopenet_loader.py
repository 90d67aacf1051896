"""A HopeNet-style per-file training loader: the baseline that ``bench/input_pipeline.py`` times.

HopeNet (Ruiz et al. 2018; ``datasets.py``, ``Pose_300W_LP`` of the deep-head-pose repository)
keeps one JPEG and one ``.mat`` per sample and, in ``__getitem__``, opens both (Pillow,
``scipy.io.loadmat``), crops the face by its landmark box, flips with the yaw and roll signs,
and runs torchvision's PIL transforms; the DataLoader's default collate stacks float tensors.
This loader does the same with ldlpose's augmentation (the same ``Augment`` and the same draws,
each item's random crop/scale, flip, Gaussian blur, brightness/contrast/saturation as torchvision's
``ColorJitter`` does them on PIL images, ImageNet normalisation), so that the two loaders differ in
how the work is done, not in what is done.

    folder = write_files(prepared_folder, out_dir)       # <key>.jpg + <key>.mat, filename_list.txt
    loader = perfile_loader(folder, size=224, batch_size=64, num_workers=2)
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import scipy.io
import torch
from PIL import Image, ImageFilter
from torch.utils.data import DataLoader, Dataset

from ldlpose.data.augment import (
    BLUR,
    BRIGHTNESS,
    CONTRAST,
    DRAWS,
    IMAGENET_MEAN,
    IMAGENET_STD,
    SATURATION,
    SIGMA,
    Augment,
)

LIST_FILE = "filename_list.txt"
BINS = np.arange(-99, 102, 3)  # HopeNet's 66 bins of 3 degrees


def write_files(prepared_dir, out_dir, count: int | None = None) -> Path:
    """Write the first ``count`` rows of a prepared folder as HopeNet keeps 300W-LP: per sample a
    JPEG (the stored bytes, unchanged) and a ``.mat`` with ``Pose_Para`` (pitch, yaw, roll in
    radians, then translation and scale) and ``pt2d`` (2 x 68 landmarks whose box is the image)."""
    from ldlpose.data.pipeline import HeadPoseDataset

    dataset = HeadPoseDataset(prepared_dir)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    stems = []
    for i in range(len(dataset) if count is None else min(count, len(dataset))):
        stem = f"sample_{i:06d}"
        data = bytes(dataset.encoded(int(dataset.rows[i])))
        (out / f"{stem}.jpg").write_bytes(data)
        width, height = Image.open(out / f"{stem}.jpg").size
        yaw, pitch, roll = (math.radians(float(a)) for a in dataset.angles_deg[i])
        points = rng.uniform([[0.0], [0.0]], [[width], [height]], size=(2, 68))
        points[:, :2] = [[0, width], [0, height]]  # the box spans the stored crop
        scipy.io.savemat(out / f"{stem}.mat", {"Pose_Para": np.array([[pitch, yaw, roll, 0.0, 0.0, 0.0, 1.0]]),
                                               "pt2d": points})
        stems.append(stem)
    (out / LIST_FILE).write_text("\n".join(stems) + "\n")
    return out


class PerFileDataset(Dataset):
    """HopeNet's ``Pose_300W_LP`` with ldlpose's augmentation: two files opened per item."""

    def __init__(self, folder, *, size: int, augment: Augment | None = None):
        self.folder, self.size, self.augment = Path(folder), size, augment or Augment()
        self.stems = (self.folder / LIST_FILE).read_text().split()

    def __len__(self) -> int:
        return len(self.stems)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        import torchvision.transforms.functional as tvf

        stem, aug = self.stems[i], self.augment
        img = Image.open(self.folder / f"{stem}.jpg").convert("RGB")
        mat = scipy.io.loadmat(self.folder / f"{stem}.mat")
        x_min, y_min = mat["pt2d"].min(axis=1)
        x_max, y_max = mat["pt2d"].max(axis=1)
        img = img.crop((int(x_min), int(y_min), int(x_max), int(y_max)))
        pitch, yaw, roll = (math.degrees(a) for a in mat["Pose_Para"][0][:3])
        draws = torch.rand(DRAWS)
        x0, y0, side = aug.box(img.width, img.height, draws)
        img = tvf.resized_crop(img, y0, x0, side, side, [self.size, self.size], antialias=True)
        if aug.flips(draws):
            img, yaw, roll = img.transpose(Image.FLIP_LEFT_RIGHT), -yaw, -roll
        if draws[BLUR] < aug.blur_p:
            lo, hi = aug.blur_sigma
            img = img.filter(ImageFilter.GaussianBlur((lo + (hi - lo) * float(draws[SIGMA])) * self.size))
        factors = [1 + f * (2 * float(draws[j]) - 1) for f, j in
                   ((aug.brightness, BRIGHTNESS), (aug.contrast, CONTRAST), (aug.saturation, SATURATION))]
        img = tvf.adjust_saturation(tvf.adjust_contrast(tvf.adjust_brightness(img, factors[0]), factors[1]),
                                    factors[2])
        image = tvf.normalize(tvf.to_tensor(img), IMAGENET_MEAN, IMAGENET_STD)
        angles = torch.tensor([yaw, pitch, roll], dtype=torch.float32)
        return {"image": image, "angles_deg": angles, "bins": torch.from_numpy(np.digitize(angles.numpy(), BINS) - 1)}


def perfile_loader(folder, *, size: int, batch_size: int = 64, num_workers: int = 0, seed: int = 0) -> DataLoader:
    """Shuffled batches with the default collate, as HopeNet's ``train_hopenet.py`` builds them."""
    return DataLoader(PerFileDataset(folder, size=size), batch_size=batch_size, shuffle=True, drop_last=True,
                      num_workers=num_workers, persistent_workers=num_workers > 0,
                      generator=torch.Generator().manual_seed(seed))
