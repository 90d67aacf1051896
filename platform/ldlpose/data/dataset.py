"""A prepared folder's rows as a torch ``Dataset``: the one reader of shard images for training and evaluation.

:mod:`ldlpose.data.pipeline` builds the training, validation and benchmark sets on it, and
:mod:`ldlpose.data.batches` draws augmented training batches from it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import torch
from torch.utils.data import Dataset

from ldlpose.data.augment import Preprocess
from ldlpose.data.shards import read_labels, read_manifest, shard_paths
from ldlpose.errors import ConfigError

__all__ = ["HeadPoseDataset"]


class _ImageColumn:
    """Zero-copy random access to the ``image`` column: per-chunk offsets and data buffers."""

    def __init__(self, dataset_dir: Path, manifest: dict):
        self._chunks = []
        starts = [0]
        for path in shard_paths(dataset_dir, manifest):
            for chunk in pq.read_table(path, columns=["image"]).column("image").chunks:
                offsets = np.frombuffer(chunk.buffers()[1], dtype=np.int32)
                offsets = offsets[chunk.offset:chunk.offset + len(chunk) + 1]
                self._chunks.append((offsets, memoryview(chunk.buffers()[2]), chunk))
                starts.append(starts[-1] + len(chunk))
        self._starts = np.asarray(starts)

    def __getitem__(self, row: int) -> memoryview:
        c = int(np.searchsorted(self._starts, row, side="right")) - 1
        offsets, data, _ = self._chunks[c]
        j = row - self._starts[c]
        return data[offsets[j]:offsets[j + 1]]


class HeadPoseDataset(Dataset):
    """Rows ``indices`` (default all) of a prepared folder, transformed by ``transform``.

    ``transform`` defaults to the 64-px evaluation :class:`Preprocess`. Subjects are numbered over
    the whole folder (``subject_names``), so train and validation subsets of one folder agree.
    """

    def __init__(self, dataset_dir, *, indices: Sequence[int] | np.ndarray | None = None,
                 transform: Preprocess | None = None, preload: bool = True):
        self.dataset_dir = Path(dataset_dir)
        self.manifest = read_manifest(self.dataset_dir)
        labels = read_labels(self.dataset_dir)
        n = len(labels["subject"])
        self.rows = np.arange(n) if indices is None else np.asarray(indices, dtype=np.int64).reshape(-1)
        if len(self.rows) and (self.rows.min() < 0 or self.rows.max() >= n):
            raise ConfigError(f"row indices must lie in [0, {n}) for {self.dataset_dir}, "
                              f"got range [{self.rows.min()}, {self.rows.max()}]")
        self.subject_names, subject_of_row = np.unique(labels["subject"].astype(str), return_inverse=True)
        self.subject_ids = subject_of_row[self.rows].astype(np.int64)  # per item
        self.angles_deg = labels["angles_deg"][self.rows].astype(np.float32)  # per item
        self.keys = labels["key"][self.rows]
        self.transform = transform or Preprocess(64)
        self._images = _ImageColumn(self.dataset_dir, self.manifest) if preload else None

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        row = int(self.rows[i])
        image, angles = self.transform(self.encoded(row), self.angles_deg[i])
        return {"image": image, "angles_deg": angles,
                "subject": torch.tensor(self.subject_ids[i]), "index": torch.tensor(row)}

    def staged(self, i: int, draws: torch.Tensor, *, decode: bool = True) -> dict[str, torch.Tensor]:
        """Item ``i`` after the per-item stage of training augmentation with ``draws``: its uint8
        ``image`` (or, with ``decode=False``, its ``encoded`` bytes) for :mod:`ldlpose.data.batches`."""
        row = int(self.rows[i])
        image, angles, draws = self.transform.stage(self.encoded(row), self.angles_deg[i], draws, decode=decode)
        return {"image" if decode else "encoded": image, "draws": draws, "angles_deg": angles,
                "subject": torch.tensor(self.subject_ids[i]), "index": torch.tensor(row)}

    @property
    def image_format(self) -> str:
        """How the folder's images are encoded ("jpeg" or "png")."""
        return self.manifest.get("image", {}).get("format", "jpeg")

    def encoded(self, row: int):
        """The stored (encoded) bytes of folder row ``row``."""
        if self._images is None:
            self._images = _ImageColumn(self.dataset_dir, self.manifest)
        return self._images[row]

    def __getstate__(self) -> dict:
        # Pickled for spawn-started workers or Ray: send labels, let the receiver reload images.
        return {**self.__dict__, "_images": None}
