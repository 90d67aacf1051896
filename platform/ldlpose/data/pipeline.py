"""The training and evaluation input pipeline: a torch Dataset over the prepared Parquet shards.

The images of a prepared folder (encoded bytes, about 10 kB each) are read once into memory with
pyarrow (300W-LP at 256 px: about 1.5 GB); DataLoader workers started by fork share that memory,
and workers started by spawn reload it. An item, ``dataset[i]``, is decoded and transformed by
:class:`~ldlpose.data.augment.Preprocess`::

    {"image": float32 (3, H, W), "angles_deg": float32 (3,) yaw/pitch/roll,
     "subject": int64 (index into dataset.subject_names), "index": int64 (row in the folder)}

:func:`train_loader` is the one builder of training loaders (``ldlpose.train.data``, the tests and
the benchmarks all use it). Its batches have the same keys plus ``draws``; inside, a worker only
decodes, crops and flips an item in uint8, and the rest of the augmentation (blur, colour jitter,
normalisation) runs once per batch on tensors: in the loader's collate on a CPU, and on the GPU
when the loader is given a CUDA device, which can also decode the JPEGs itself (nvJPEG), so that
a GPU node needs almost no CPU per image (``bench/input_pipeline.py`` measures both).

Typical use (see ``docs/data.md``)::

    train_ds, val_ds = train_val_datasets(root / "300w-lp", image_size=224)
    train = train_loader(train_ds, batch_size=64, num_workers=4, seed=0)
    test = eval_loader(benchmark_dataset("aflw2000", image_size=224), batch_size=256)
    for epoch in range(epochs):
        train.set_epoch(epoch)
        for batch in train: ...
"""

from __future__ import annotations

from torch.utils.data import DataLoader

from ldlpose.data import benchmarks
from ldlpose.data.augment import Augment, Preprocess
from ldlpose.data.batches import TrainLoader, train_loader
from ldlpose.data.dataset import HeadPoseDataset
from ldlpose.data.samplers import PairedBatchSampler
from ldlpose.data.splits import rows_within, split_by_subject, split_subjects

__all__ = [
    "Augment", "HeadPoseDataset", "PairedBatchSampler", "Preprocess", "TrainLoader", "benchmark_dataset",
    "eval_loader", "rows_within", "set_epoch", "split_by_subject", "split_subjects", "train_loader",
    "train_val_datasets",
]


def train_val_datasets(train_dir, *, image_size: int = 64, val_dir=None, val_fraction: float = 0.1,
                       seed: int = 0, augment: Augment | None = None,
                       max_abs_angle_deg: float | None = None) -> tuple[HeadPoseDataset, HeadPoseDataset]:
    """Training set (augmented) and validation set (evaluation transform).

    Validation is ``val_dir`` when given (synthhead has one), else a subject-disjoint
    ``val_fraction`` of ``train_dir`` drawn with ``seed``. ``max_abs_angle_deg`` drops training
    and validation rows with a larger |angle| first (HopeNet-family training uses 99).
    """
    rows = None if max_abs_angle_deg is None else rows_within(train_dir, max_abs_angle_deg)
    train_aug = Preprocess(image_size, augment or Augment())
    if val_dir is not None:
        val_rows = None if max_abs_angle_deg is None else rows_within(val_dir, max_abs_angle_deg)
        return (HeadPoseDataset(train_dir, indices=rows, transform=train_aug),
                HeadPoseDataset(val_dir, indices=val_rows, transform=Preprocess(image_size)))
    train_rows, val_rows = split_by_subject(train_dir, val_fraction, seed, indices=rows)
    return (HeadPoseDataset(train_dir, indices=train_rows, transform=train_aug),
            HeadPoseDataset(train_dir, indices=val_rows, transform=Preprocess(image_size)))


def benchmark_dataset(name: str, *, image_size: int = 64, root=None) -> HeadPoseDataset:
    """The rows of benchmark ``name`` that count, with its protocol's evaluation transform: each item's
    image is the one ``ldlpose evaluate`` feeds a model (:mod:`ldlpose.data.inputs`), normalised."""
    bench = benchmarks.get(name)
    path = bench.resolve(root)
    return HeadPoseDataset(path, indices=bench.row_indices(path),
                           transform=Preprocess(image_size, view=bench.protocol.input, draft=False))


def eval_loader(dataset, *, batch_size: int = 256, num_workers: int = 0, pin_memory: bool = False) -> DataLoader:
    """Every item once, in order (evaluate on one rank, or pass each rank a subset of indices): the one
    builder of evaluation loaders (``ldlpose.train.data`` builds the loop's on it)."""
    return DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                      pin_memory=pin_memory)


def set_epoch(loader, epoch: int) -> None:
    """Start epoch ``epoch`` of a loader: a :class:`TrainLoader` reseeds itself; others need nothing."""
    if isinstance(loader, TrainLoader):
        loader.set_epoch(epoch)
