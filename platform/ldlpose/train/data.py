"""Data loaders of one training run on one worker, from the run config.

Training batches come from :func:`ldlpose.data.pipeline.train_loader` (the one builder): sharded
across workers by a seeded ``DistributedSampler`` (also for one worker), with each item's
augmentation drawn from ``(seed, epoch, row)``, so a resumed run sees the same batches as an
uninterrupted one. On a GPU worker the batches are finished (and JPEGs decoded) on the GPU.
Evaluation sets are split into interleaved shares, one per worker; the loop gathers predictions
before computing metrics. Every evaluation loader is built by :func:`evaluation_loader`; a test
benchmark is read as ``ldlpose evaluate`` reads it (:mod:`ldlpose.data.inputs`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Subset

from ldlpose.config import RunConfig
from ldlpose.data import pipeline
from ldlpose.data.augment import Augment
from ldlpose.data.batches import TrainLoader

EVAL_BATCH = 128


@dataclass
class Loaders:
    train: TrainLoader  # set_epoch every epoch
    evaluation: dict[str, DataLoader]  # "val" and every benchmark, this worker's share
    seed: int

    def set_epoch(self, epoch: int) -> None:
        self.train.set_epoch(epoch)


def _augment(run: RunConfig) -> Augment:
    a = run.data.augment
    return Augment(scale=(a.scale_min, 1.0), shift=a.shift, flip_p=a.flip, brightness=a.color,
                   contrast=a.color, saturation=a.color, blur_p=a.blur)


def _path(root: str, folder: str) -> Path:
    path = Path(folder).expanduser()
    from ldlpose.data.benchmarks import data_root  # a URI root: this node's copy of it

    return path if path.is_absolute() else data_root(root) / path


def _limit(dataset, count: int | None, seed: int, *, spread: bool):
    """At most ``count`` items: a seeded random subset (training) or evenly spaced (evaluation)."""
    if count is None or count >= len(dataset):
        return dataset
    if spread:
        indices = np.linspace(0, len(dataset) - 1, count).round().astype(int)
    else:
        indices = np.sort(np.random.default_rng(seed).permutation(len(dataset))[:count])
    return Subset(dataset, indices.tolist())


def limit_eval(dataset, count: int | None):
    """An evaluation set cut to ``data.max_eval_samples`` rows, evenly spaced (the same rows every time)."""
    return _limit(dataset, count, 0, spread=True)


def _train_loader(dataset, run: RunConfig, method, rank: int, world: int) -> TrainLoader:
    return pipeline.train_loader(dataset, batch_size=run.train.batch_size, num_workers=run.data.loader_workers,
                                 pairs=method.needs_pairs, rank=rank, world_size=world, seed=run.train.seed,
                                 device=_device(run))


def _device(run: RunConfig) -> torch.device | None:
    """The GPU this worker trains on, if any (Ray Train has made it the current CUDA device)."""
    if run.resources.gpus_per_worker > 0 and torch.cuda.is_available():
        return torch.device("cuda", torch.cuda.current_device())
    return None


def _share(dataset, rank: int, world: int):
    return dataset if world == 1 else Subset(dataset, list(range(rank, len(dataset), world)))


def evaluation_loader(dataset, max_eval_samples: int | None, *, rank: int = 0, world: int = 1) -> DataLoader:
    """This worker's share of an evaluation set cut to ``data.max_eval_samples``: every evaluation
    loader of a run (validation, benchmarks, a stored checkpoint's scoring) is built here."""
    return pipeline.eval_loader(_share(limit_eval(dataset, max_eval_samples), rank, world), batch_size=EVAL_BATCH)


def benchmark_loaders(run: RunConfig, names: list[str] | None = None, *, rank: int = 0,
                      world: int = 1) -> dict[str, DataLoader]:
    """Loaders of the run's test benchmarks (or ``names``), each read as ``ldlpose evaluate`` reads it
    (:func:`ldlpose.data.pipeline.benchmark_dataset`), so the scores logged are the ones it gives."""
    d = run.data
    return {name: evaluation_loader(pipeline.benchmark_dataset(name, image_size=d.image_size, root=d.root),
                                    d.max_eval_samples, rank=rank, world=world)
            for name in (d.benchmarks if names is None else names)}


def build_loaders(run: RunConfig, method, *, rank: int = 0, world: int = 1) -> Loaders:
    from ldlpose.data.splits import VAL_SPLIT_SEED

    d = run.data
    val_dir = _path(d.root, d.val) if d.val else None
    # The split's seed is fixed: train.seed changes training only, never the validation rows.
    train_ds, val_ds = pipeline.train_val_datasets(
        _path(d.root, d.train), image_size=d.image_size, val_dir=val_dir, val_fraction=d.val_fraction,
        seed=VAL_SPLIT_SEED, augment=_augment(run), max_abs_angle_deg=d.max_abs_angle_deg)
    train_ds = _limit(train_ds, d.max_train_samples, run.train.seed, spread=False)
    evaluation = {"val": evaluation_loader(val_ds, d.max_eval_samples, rank=rank, world=world),
                  **benchmark_loaders(run, rank=rank, world=world)}
    return Loaders(_train_loader(train_ds, run, method, rank, world), evaluation, run.train.seed)
